// `tabswarm eval --checkpoint C [--data F]`: validation loss (last 10% of the corpus) of a checkpoint.
import { Dataset, evalBatches } from '../model/data';
import { Trainer } from '../model/trainer';
import { num, parse, required, str } from './args';
import { cliRuntime, defaultCorpus, loadCheckpointFile, readText, tokenizerFor } from './engine';

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const evalSummary = 'validation loss of a checkpoint (the last 10% of the corpus)';

export const evalHelp = `tabswarm eval --checkpoint C [--data F] [--batch-size 12] [--eval-batches 50] [--block-size T]`;

export async function evaluate(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    checkpoint: { type: 'string' },
    data: { type: 'string' },
    'batch-size': { type: 'string' },
    'eval-batches': { type: 'string' },
    'block-size': { type: 'string' },
  });
  const ck = loadCheckpointFile(required(values, 'checkpoint'));
  const text = readText(str(values, 'data') ?? defaultCorpus);
  const tokenizer = tokenizerFor(ck, text);
  const data = Dataset.fromText(text, tokenizer, { valFraction: 0.1 });
  const B = num(values, 'batch-size', 12, { int: true, min: 1 });
  const T = num(values, 'block-size', ck.config.block_size, { int: true, min: 1 });
  const rt = await cliRuntime();
  const trainer = await Trainer.create(rt, {
    config: ck.config,
    bottleneck: ck.bottleneck,
    B,
    T,
    initial: ck.params,
    tune: false,
    schedule: { lr: 0, minLr: 0, warmup: 0, decaySteps: 1 },
  });
  const batches = evalBatches(data.val, { B, T, maxBatches: num(values, 'eval-batches', 50, { int: true, min: 1 }) });
  const loss = await trainer.evaluate(batches);
  console.log(JSON.stringify({ val_loss: loss, batches: batches.length, tokens: batches.length * B * T }));
  rt.destroy();
  return 0;
}
