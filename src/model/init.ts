// Deterministic GPT-2 initialisation from a seed, so every peer of a run can build identical weights locally.
import { BOTTLENECK_NAME, type BottleneckConfig } from './bottleneck-config';
import { initStd, type GPTConfig, type ParamSpec } from './config';

/** mulberry32: a small seeded uniform [0, 1) generator, identical on every JS engine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Normal samples via Box-Muller over mulberry32, good enough for initialisation. */
function normalSource(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(Math.max(uniform(), 1e-12))) * Math.cos(2 * Math.PI * uniform());
}

/** Each tensor gets its own stream (seed mixed with the tensor name) so a stage's init does not depend on the others. */
function nameSeed(seed: number, name: string): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * A bottleneck weight (`bottleneck.<l>.down.weight` [C, k] or `.up.weight` [k, C]): normal with std 1/sqrt(fan_in),
 * down 1/sqrt(C), up 1/sqrt(k), so each projection keeps the per-channel scale of what it maps (z and x' have the
 * residual stream's RMS). Measured against an orthogonal pair (down = Q, up = Q^T: keeps only k/C of the energy)
 * and GPT-2's 0.02 (shrinks the stream ~50x per projection) on the reference model split in 2 stages, 100 steps,
 * k = 8 and 32, plain and passthrough (docs/model.md, bench/bottleneck-init.ts): the scale-keeping init gave the
 * lowest validation loss in all four cases. Each tensor draws from its own stream, so a peer initialising one stage
 * gets the values the whole model has.
 */
function bottleneckWeight(spec: ParamSpec, seed: number): Float32Array {
  const fanIn = spec.shape[0];
  const n = spec.shape[0] * spec.shape[1];
  const next = normalSource(nameSeed(seed, spec.name));
  const std = 1 / Math.sqrt(fanIn);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = std * next();
  return out;
}

/** Initial values of `specs` from `seed`; bottleneck parameters (biases 0) need the model's `bottleneck`. */
export function initParams(config: GPTConfig, specs: ParamSpec[], seed: number, bottleneck?: BottleneckConfig | null): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const bn = BOTTLENECK_NAME.exec(s.name);
    if (bn) {
      if (!bottleneck) throw new Error(`initParams: ${s.name} is a bottleneck parameter but no bottleneck config was given`);
      out.set(s.name, bn[3] === 'bias' ? new Float32Array(s.shape[0]) : bottleneckWeight(s, seed));
      continue;
    }
    const n = s.shape.reduce((a, b) => a * b, 1);
    const kind = initStd(s.name, config);
    const v = new Float32Array(n);
    if (kind === 'ones') v.fill(1);
    else if (kind !== 'zeros') {
      const next = normalSource(nameSeed(seed, s.name));
      for (let i = 0; i < n; i++) v[i] = kind * next();
    }
    out.set(s.name, v);
  }
  return out;
}
