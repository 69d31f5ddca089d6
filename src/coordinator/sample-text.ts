// A text sample from a full set of trained parameters (collected from the swarm by weight-collector.ts): the
// coordinator and demo commands print one at the end of a run.
import type { Runtime } from '../gpu/runtime';
import { gpt2ParamSpecs, type GPTConfig } from '../model/config';
import { ParamStore } from '../model/params';
import { Sampler } from '../model/sampler';
import type { CharTokenizer } from '../model/tokenizer';

/** `chars` characters sampled after a newline; `params` holds every gpt2ParamSpecs name. */
export async function sampleText(
  rt: Runtime,
  config: GPTConfig,
  params: Map<string, Float32Array>,
  tokenizer: CharTokenizer,
  chars: number,
  seed: number,
): Promise<string> {
  const store = new ParamStore(rt, gpt2ParamSpecs(config), 'sample');
  store.load(params);
  const sampler = new Sampler(rt, config, store);
  const ids = await sampler.generate(tokenizer.encode('\n'), { maxNewTokens: chars, seed });
  return tokenizer.decode(ids);
}
