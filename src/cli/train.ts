// `tabswarm train`: trains a GPT on the corpus with the single-peer engine, shows progress, evaluates, writes a
// checkpoint and prints a sample. `--json` prints one JSON object per logged step and a summary as the last line.
import cliProgress from 'cli-progress';
import { describeAdapter } from '../gpu/device';
import { Dataset, evalBatches, sampleBatch } from '../model/data';
import { PRECISIONS, type Precision } from '../model/half-linears';
import { Sampler } from '../model/sampler';
import { Trainer, type Batch } from '../model/trainer';
import { CharTokenizer } from '../model/tokenizer';
import { num, parse, str, UsageError } from './args';
import { cliRuntime, defaultCorpus, readText, saveCheckpointFile, saveTuning } from './engine';
import { tuneTrainer } from './tune-progress';

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const trainSummary = 'train a GPT on this machine (WebGPU through Dawn) and write a safetensors checkpoint';

export const trainHelp = `tabswarm train [flags]
  --n-layer 4 --n-head 4 --n-embd 128 --block-size 64   model (nanoGPT's CPU recipe)
  --batch-size 12        sequences per microbatch        --grad-accum 1   microbatches per step
  --steps 2000           optimizer steps                 --lr 1e-3 --min-lr 1e-4 --warmup 100
  --weight-decay 0.1 --beta2 0.99 --grad-clip 1.0        --seed 1337
  --eval-every 250 --eval-batches 20                     validation loss every N steps (and at the end)
  --data public/tinyshakespeare.txt                      --out out/model.safetensors
  --sample-chars 300     sample printed at the end (0: none)
  --json                 JSON lines instead of the progress bar; last line is the summary
  --no-tune              skip the matmul autotuner (its choices are cached in .cache/matmul-tuning.json)
  --precision f32        f16: the blocks' linears multiply f16 operands (f32 accumulation, f32 master weights,
                         gradients and AdamW state); needs the WebGPU feature shader-f16`;

function precisionFlag(raw: string | undefined): Precision {
  if (raw === undefined) return 'f32';
  const p = PRECISIONS.find((x) => x === raw);
  if (!p) throw new UsageError(`--precision: "${raw}" is not one of ${PRECISIONS.join(', ')}`);
  return p;
}

export async function train(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    'n-layer': { type: 'string' },
    'n-head': { type: 'string' },
    'n-embd': { type: 'string' },
    'block-size': { type: 'string' },
    'batch-size': { type: 'string' },
    'grad-accum': { type: 'string' },
    steps: { type: 'string' },
    lr: { type: 'string' },
    'min-lr': { type: 'string' },
    warmup: { type: 'string' },
    'weight-decay': { type: 'string' },
    beta2: { type: 'string' },
    'grad-clip': { type: 'string' },
    seed: { type: 'string' },
    'eval-every': { type: 'string' },
    'eval-batches': { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string' },
    'sample-chars': { type: 'string' },
    json: { type: 'boolean' },
    'log-every': { type: 'string' },
    'no-tune': { type: 'boolean' },
    precision: { type: 'string' },
  });
  const json = values.json === true;
  const int = { int: true, min: 1 };
  const steps = num(values, 'steps', 2000, int);
  const B = num(values, 'batch-size', 12, int);
  const blockSize = num(values, 'block-size', 64, int);
  const accum = num(values, 'grad-accum', 1, int);
  const lr = num(values, 'lr', 1e-3, { min: 0 });
  const seed = num(values, 'seed', 1337, { int: true, min: 0 });
  const evalEvery = num(values, 'eval-every', 250, int);
  const evalCount = num(values, 'eval-batches', 20, int);
  const logEvery = num(values, 'log-every', 10, int);
  const out = str(values, 'out') ?? 'out/model.safetensors';
  const sampleChars = num(values, 'sample-chars', 300, { int: true, min: 0 });
  const precision = precisionFlag(str(values, 'precision'));

  const text = readText(str(values, 'data') ?? defaultCorpus);
  const tokenizer = CharTokenizer.fromCorpus(text);
  const data = Dataset.fromText(text, tokenizer, { valFraction: 0.1 });
  const config = {
    n_layer: num(values, 'n-layer', 4, int),
    n_head: num(values, 'n-head', 4, int),
    n_embd: num(values, 'n-embd', 128, int),
    vocab_size: tokenizer.vocabSize,
    block_size: blockSize,
  };
  const log = (s: string) => {
    if (!json) process.stderr.write(s + '\n');
  };
  const rt = await cliRuntime({ f16: precision === 'f16' });
  log(`[train] ${describeAdapter(rt.handle.report)}`);
  const trainer = await Trainer.create(rt, {
    config,
    B,
    T: blockSize,
    seed,
    schedule: { lr, minLr: num(values, 'min-lr', 1e-4, { min: 0 }), warmup: num(values, 'warmup', 100, { int: true, min: 0 }), decaySteps: steps },
    optimizer: {
      weightDecay: num(values, 'weight-decay', 0.1, { min: 0 }),
      beta2: num(values, 'beta2', 0.99, { min: 0 }),
      gradClip: num(values, 'grad-clip', 1.0, { min: 0 }),
    },
    log,
    tune: false, // below, with a progress bar
    precision,
  });
  if (values['no-tune'] !== true) await tuneTrainer(rt, trainer, log);
  saveTuning(rt);
  log(
    `[train] ${trainer.stage.params.count.toLocaleString()} parameters; ${steps} steps of ${accum}x${B}x${blockSize} tokens; ` +
      `precision ${precision}`,
  );
  const valBatches: Batch[] = evalBatches(data.val, { B, T: blockSize, maxBatches: evalCount });
  const bar = json
    ? null
    : new cliProgress.SingleBar(
        {
          format: 'train |{bar}| {value}/{total} | loss {loss} | val {val} | {tps} tok/s | ETA {eta_formatted}',
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
  bar?.start(steps, 0, { loss: '-', val: '-', tps: '-' });
  const tokensPerStep = accum * B * blockSize;
  let valLoss = Number.NaN;
  let lastLoss = Number.NaN;
  let trainTime = 0;
  let trainedSteps = 0;
  const t0 = performance.now();
  for (let it = 0; it < steps; it++) {
    const micro: Batch[] = [];
    for (let k = 0; k < accum; k++) micro.push(sampleBatch(data.train, { seed, step: it, micro: k, B, T: blockSize }));
    const ts = performance.now();
    const r = await trainer.step(it, micro);
    trainTime += performance.now() - ts;
    trainedSteps++;
    lastLoss = r.loss;
    const tps = (trainedSteps * tokensPerStep) / (trainTime / 1000);
    const isEval = (it + 1) % evalEvery === 0 || it === steps - 1;
    if (isEval) valLoss = await trainer.evaluate(valBatches);
    if (json) {
      if (it % logEvery === 0 || isEval) {
        const rec: Record<string, number> = { step: it, loss: r.loss, lr: r.lr, grad_norm: r.gradNorm, tokens_per_s: tps };
        if (isEval) rec.val_loss = valLoss;
        console.log(JSON.stringify(rec));
      }
    } else {
      bar!.update(it + 1, { loss: r.loss.toFixed(4), val: Number.isNaN(valLoss) ? '-' : valLoss.toFixed(4), tps: tps.toFixed(0) });
    }
  }
  bar?.stop();
  const wall = (performance.now() - t0) / 1000;
  const params = await trainer.exportParams();
  saveCheckpointFile(out, { config, params, tokenizer: tokenizer.toJSON() });
  log(`[train] wrote ${out} (${wall.toFixed(1)} s)`);
  if (sampleChars > 0 && !json) {
    const sampler = new Sampler(rt, config, trainer.stage.params);
    const ids = await sampler.generate(tokenizer.encode('\n'), { maxNewTokens: sampleChars, seed });
    process.stdout.write(`\n--- sample ---\n${tokenizer.decode(ids)}\n--------------\n`);
  }
  const summary = { steps, tokens_per_s: (trainedSteps * tokensPerStep) / (trainTime / 1000), train_loss: lastLoss, val_loss: valLoss };
  console.log(JSON.stringify(summary));
  rt.destroy();
  return 0;
}
