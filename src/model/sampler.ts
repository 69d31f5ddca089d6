// Autoregressive sampling with a B=1 stage over a full block: causal attention makes the logits at position p
// depend only on tokens <= p, so the window is padded on the right and the logits at the last real token are read.
import type { Runtime } from '../gpu/runtime';
import type { BottleneckConfig } from './bottleneck-config';
import type { GPTConfig } from './config';
import { mulberry32 } from './init';
import type { ParamStore } from './params';
import { Stage } from './stage';

export interface SampleOptions {
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  seed?: number;
}

export class Sampler {
  private readonly stage: Stage;

  constructor(
    private readonly rt: Runtime,
    private readonly config: GPTConfig,
    params: ParamStore,
    /** The model's learned bottleneck, when it has one (its parameters must be in `params`). */
    bottleneck: BottleneckConfig | null = null,
  ) {
    this.stage = new Stage(rt, config, { layerStart: 0, layerEnd: config.n_layer }, { B: 1, T: config.block_size }, { params, bottleneck });
  }

  async generate(prompt: Uint32Array, opts: SampleOptions): Promise<Uint32Array> {
    const T = this.config.block_size;
    const V = this.config.vocab_size;
    const temperature = opts.temperature ?? 0.8;
    const topK = Math.min(opts.topK ?? V, V);
    const uniform = mulberry32(opts.seed ?? 42);
    const seq = Array.from(prompt.length ? prompt : [0]);
    const window = new Uint32Array(T);
    for (let n = 0; n < opts.maxNewTokens; n++) {
      const ctx = seq.slice(-T);
      window.fill(0);
      window.set(ctx);
      this.stage.setTokens(0, window);
      this.stage.setTargets(0, window);
      this.stage.forward(0);
      const logits = await this.rt.read(this.stage.logits(0), T * V);
      const row = logits.subarray((ctx.length - 1) * V, ctx.length * V);
      seq.push(pick(row, temperature, topK, uniform));
    }
    return Uint32Array.from(seq.slice(prompt.length ? prompt.length : 1));
  }
}

function pick(logits: Float32Array, temperature: number, topK: number, uniform: () => number): number {
  const idx = Array.from(logits.keys())
    .sort((a, b) => logits[b] - logits[a])
    .slice(0, topK);
  if (temperature <= 0) return idx[0];
  const max = logits[idx[0]];
  const w = idx.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let r = uniform() * total;
  for (let j = 0; j < idx.length; j++) {
    r -= w[j];
    if (r <= 0) return idx[j];
  }
  return idx[idx.length - 1];
}
