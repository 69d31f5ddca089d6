// A text sample from a full set of trained parameters (collected from the swarm by weight-collector.ts): the
// coordinator and demo commands print one at the end of a run.
import type { Runtime } from '../gpu/runtime';
import { modelParamSpecs, type BottleneckConfig } from '../model/bottleneck-config';
import type { GPTConfig } from '../model/config';
import { ParamStore } from '../model/params';
import { Sampler } from '../model/sampler';
import type { CharTokenizer } from '../model/tokenizer';

/** `chars` characters sampled after a newline; `params` holds every modelParamSpecs name. */
export async function sampleText(
  rt: Runtime,
  config: GPTConfig,
  params: Map<string, Float32Array>,
  tokenizer: CharTokenizer,
  chars: number,
  seed: number,
  /** The model's learned bottleneck, when the run had one (its parameters are in `params`). */
  bottleneck: BottleneckConfig | null = null,
): Promise<string> {
  const store = new ParamStore(rt, modelParamSpecs(config, bottleneck), 'sample');
  store.load(params);
  const sampler = new Sampler(rt, config, store, bottleneck);
  const ids = await sampler.generate(tokenizer.encode('\n'), { maxNewTokens: chars, seed });
  return tokenizer.decode(ids);
}
