// Train-step throughput of the single-peer engine at a given config (default: nanoGPT's CPU recipe,
// n_layer 4, n_head 4, n_embd 128, block_size 64, batch 12). Median over timed steps after warm-up.
import type { Runtime } from '../src/gpu/runtime';
import type { GPTConfig } from '../src/model/config';
import { loadCorpus } from '../src/model/corpus-node';
import { Dataset, sampleBatch } from '../src/model/data';
import { CharTokenizer } from '../src/model/tokenizer';
import { Trainer } from '../src/model/trainer';

export interface TrainStepResult {
  config: GPTConfig;
  B: number;
  tokensPerStep: number;
  medianStepMs: number;
  tokensPerS: number;
  steps: number;
}

export async function benchTrainStep(
  rt: Runtime,
  opts: { n_layer?: number; n_head?: number; n_embd?: number; T?: number; B?: number; steps?: number } = {},
): Promise<TrainStepResult> {
  const text = loadCorpus();
  const tokenizer = CharTokenizer.fromCorpus(text);
  const data = Dataset.fromText(text, tokenizer);
  const T = opts.T ?? 64;
  const B = opts.B ?? 12;
  const config: GPTConfig = {
    n_layer: opts.n_layer ?? 4,
    n_head: opts.n_head ?? 4,
    n_embd: opts.n_embd ?? 128,
    vocab_size: tokenizer.vocabSize,
    block_size: T,
  };
  const trainer = await Trainer.create(rt, { config, B, T, seed: 1, schedule: { lr: 1e-3, minLr: 1e-4, warmup: 10, decaySteps: 1000 } });
  const steps = opts.steps ?? 20;
  const times: number[] = [];
  for (let it = 0; it < steps + 3; it++) {
    const batch = sampleBatch(data.train, { seed: 1, step: it, micro: 0, B, T });
    const t0 = performance.now();
    await trainer.step(it, [batch]);
    if (it >= 3) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)];
  return { config, B, tokensPerStep: B * T, medianStepMs: med, tokensPerS: (B * T) / (med / 1000), steps };
}
