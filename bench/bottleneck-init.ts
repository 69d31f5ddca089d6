// Which initialisation of the learned bottleneck trains best: the reference model (n_layer 4, n_head 4, n_embd
// 128, block 64) split in 2 stages with a bottleneck after block 2, plain and passthrough, at two widths, each init
// trained the same steps on the same batches; prints final train loss (mean of the last 10 steps) and val loss.
//   node bin/run-ts.mjs bench/bottleneck-init.ts [steps=100] [widths=8,32] [B=4] [inits=all]
import { nodeRuntime } from '../src/gpu/node-runtime';
import { modelParamSpecs, type BottleneckConfig } from '../src/model/bottleneck-config';
import type { GPTConfig } from '../src/model/config';
import { loadCorpus } from '../src/model/corpus-node';
import { Dataset, evalBatches, sampleBatch } from '../src/model/data';
import { initParams, mulberry32 } from '../src/model/init';
import { CharTokenizer } from '../src/model/tokenizer';
import { Trainer } from '../src/model/trainer';

// gauss (down N(0, 1/sqrt(C)), up N(0, 1/sqrt(k))) is the model's default (src/model/init.ts); orth: down = Q,
// up = Q^T; small: GPT-2's 0.02; zeros: both 0 (passthrough only learns from truncation).
type Init = 'orth' | 'gauss' | 'small' | 'zeros';

function gaussian(n: number, std: number, seed: number): Float32Array {
  const u = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = std * Math.sqrt(-2 * Math.log(Math.max(u(), 1e-12))) * Math.cos(2 * Math.PI * u());
  return out;
}

/** A random [C, k] matrix with orthonormal columns (Gram-Schmidt twice over normal samples), column j at q[i * k + j]. */
function orthonormalColumns(C: number, k: number, seed: number): Float64Array {
  const q = Float64Array.from(gaussian(C * k, 1, seed));
  for (let j = 0; j < k; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        let dot = 0;
        for (let i = 0; i < C; i++) dot += q[i * k + j] * q[i * k + p];
        for (let i = 0; i < C; i++) q[i * k + j] -= dot * q[i * k + p];
      }
    }
    let norm = 0;
    for (let i = 0; i < C; i++) norm += q[i * k + j] ** 2;
    for (let i = 0; i < C; i++) q[i * k + j] /= Math.sqrt(norm);
  }
  return q;
}

/** The model's init with the bottleneck weights replaced by `init`. */
function paramsWith(config: GPTConfig, bn: BottleneckConfig, init: Init, seed: number): Map<string, Float32Array> {
  const p = initParams(config, modelParamSpecs(config, bn), seed, bn);
  const C = config.n_embd;
  const k = bn.width;
  for (const l of bn.after) {
    const down = `bottleneck.${l}.down.weight`;
    const up = `bottleneck.${l}.up.weight`;
    if (init === 'zeros') {
      p.set(down, new Float32Array(C * k));
      p.set(up, new Float32Array(C * k));
    } else if (init === 'small') {
      p.set(down, gaussian(C * k, 0.02, seed + 1));
      p.set(up, gaussian(C * k, 0.02, seed + 2));
    } else if (init === 'gauss') {
      p.set(down, gaussian(C * k, 1 / Math.sqrt(C), seed + 1));
      p.set(up, gaussian(C * k, 1 / Math.sqrt(k), seed + 2));
    } else {
      const q = orthonormalColumns(C, k, seed + 3);
      const d = Float32Array.from(q);
      const u = new Float32Array(C * k);
      for (let i = 0; i < C; i++) for (let j = 0; j < k; j++) u[j * C + i] = q[i * k + j];
      p.set(down, d);
      p.set(up, u);
    }
  }
  return p;
}

const steps = Number(process.argv[2] ?? 100);
const widths = (process.argv[3] ?? '8,32').split(',').map(Number);
const rt = await nodeRuntime({ quiet: true });
const text = loadCorpus();
const tokenizer = CharTokenizer.fromCorpus(text);
const data = Dataset.fromText(text, tokenizer, { valFraction: 0.1 });
const config: GPTConfig = { n_layer: 4, n_head: 4, n_embd: 128, vocab_size: tokenizer.vocabSize, block_size: 64 };
const B = Number(process.argv[4] ?? 4);
const T = 64;
const schedule = { lr: 3e-3, minLr: 3e-4, warmup: 5, decaySteps: steps };
const val = evalBatches(data.val, { B, T, maxBatches: 8 });
const seed = 1337;
const only = process.argv[5] ? process.argv[5].split(',') : null;

async function run(label: string, bn: BottleneckConfig | null, initial: Map<string, Float32Array> | undefined): Promise<void> {
  const t0 = performance.now();
  const tr = await Trainer.create(rt, { config, B, T, schedule, seed, initial, bottleneck: bn, tune: false });
  const losses: number[] = [];
  for (let it = 0; it < steps; it++) losses.push((await tr.step(it, [sampleBatch(data.train, { seed: 7, step: it, micro: 0, B, T })])).loss);
  const last = losses.slice(-10).reduce((a, b) => a + b, 0) / Math.min(10, losses.length);
  const v = await tr.evaluate(val);
  const s = ((performance.now() - t0) / 1000).toFixed(0);
  console.log(JSON.stringify({ run: label, first: +losses[0].toFixed(4), train_last10: +last.toFixed(4), val: +v.toFixed(4), seconds: +s }));
}

await run('none', null, undefined);
for (const width of widths) {
  for (const passthrough of [false, true]) {
    const bn: BottleneckConfig = { width, passthrough, after: [2] };
    const inits: Init[] = passthrough ? ['small', 'zeros', 'gauss', 'orth'] : ['orth', 'gauss', 'small'];
    for (const init of inits.filter((i) => only === null || only.includes(i)))
      await run(`k=${width} ${passthrough ? 'passthrough' : 'plain'} ${init}`, bn, paramsWith(config, bn, init, seed));
  }
}
rt.destroy();
