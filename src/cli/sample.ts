// `tabswarm sample --checkpoint C --prompt P`: generates text from a checkpoint.
import { ParamStore } from '../model/params';
import { Sampler } from '../model/sampler';
import { stageParamSpecs } from '../model/stage';
import { num, parse, required, str } from './args';
import { cliRuntime, defaultCorpus, loadCheckpointFile, readText, tokenizerFor } from './engine';

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const sampleSummary = 'generate text from a checkpoint';

export const sampleHelp = `tabswarm sample --checkpoint C --prompt P [--chars 500] [--temperature 0.8] [--top-k 0] [--seed 42] [--data F]`;

export async function sample(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    checkpoint: { type: 'string' },
    prompt: { type: 'string' },
    chars: { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
    data: { type: 'string' },
  });
  const ck = loadCheckpointFile(required(values, 'checkpoint'));
  const prompt = str(values, 'prompt') ?? '\n';
  const tokenizer = tokenizerFor(ck, ck.tokenizer ? undefined : readText(str(values, 'data') ?? defaultCorpus));
  const rt = await cliRuntime();
  const params = new ParamStore(rt, stageParamSpecs(ck.config, { layerStart: 0, layerEnd: ck.config.n_layer }, ck.bottleneck));
  params.load(ck.params);
  const sampler = new Sampler(rt, ck.config, params, ck.bottleneck ?? null);
  const topK = num(values, 'top-k', 0, { int: true, min: 0 });
  const ids = await sampler.generate(tokenizer.encode(prompt), {
    maxNewTokens: num(values, 'chars', 500, { int: true, min: 1 }),
    temperature: num(values, 'temperature', 0.8, { min: 0 }),
    topK: topK === 0 ? undefined : topK,
    seed: num(values, 'seed', 42, { int: true, min: 0 }),
  });
  process.stdout.write(prompt + tokenizer.decode(ids) + '\n');
  rt.destroy();
  return 0;
}
