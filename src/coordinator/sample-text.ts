// A text sample from a full set of trained parameters (collected from the swarm by weight-collector.ts): the
// coordinator and demo commands print one at the end of a run.
import type { Runtime } from '../gpu/runtime';
import { modelParamSpecs, type BottleneckConfig } from '../model/bottleneck-config';
import type { GPTConfig } from '../model/config';
import { ParamStore } from '../model/params';
import { Sampler } from '../model/sampler';
import type { TextTokenizer } from '../model/text-tokenizer';

/** `chars` tokens sampled after `prompt` (default: a newline; not part of the result); `params` holds every modelParamSpecs name. */
export async function sampleText(
  rt: Runtime,
  config: GPTConfig,
  params: Map<string, Float32Array>,
  tokenizer: Pick<TextTokenizer, 'encode' | 'decode'>,
  chars: number,
  seed: number,
  /** The model's learned bottleneck, when the run had one (its parameters are in `params`). */
  bottleneck: BottleneckConfig | null = null,
  /** The coordinator page's sample box: the person's text (every character must be in the vocabulary). */
  prompt = '\n',
): Promise<string> {
  const store = new ParamStore(rt, modelParamSpecs(config, bottleneck), 'sample');
  store.load(params);
  const sampler = new Sampler(rt, config, store, bottleneck);
  const ids = await sampler.generate(startIds(tokenizer, prompt), { maxNewTokens: chars, seed });
  return tokenizer.decode(ids);
}

/** The prompt's ids; the default newline falls back to id 0 in a vocabulary without it (a GPT-2 'used' one may lack it). */
function startIds(tokenizer: Pick<TextTokenizer, 'encode'>, prompt: string): Uint32Array {
  try {
    return tokenizer.encode(prompt);
  } catch (e) {
    if (prompt !== '\n') throw e;
    return Uint32Array.of(0);
  }
}
