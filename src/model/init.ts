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
 * A random [C, k] matrix with orthonormal columns (k <= C): Gram-Schmidt (twice, for float rounding) over normal
 * samples in float64, from a stream of its own.
 */
export function orthonormalColumns(C: number, k: number, seed: number): Float64Array {
  if (k > C) throw new Error(`orthonormalColumns: ${k} columns do not fit in ${C} dimensions`);
  const next = normalSource(seed);
  const q = new Float64Array(C * k); // column j at q[i * k + j]
  for (let i = 0; i < C * k; i++) q[i] = next();
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
    norm = Math.sqrt(norm);
    for (let i = 0; i < C; i++) q[i * k + j] /= norm;
  }
  return q;
}

/**
 * A bottleneck weight (`bottleneck.<l>.down.weight` [C, k] or `.up.weight` [k, C]). Without passthrough, down = Q
 * and up = Q^T for one random Q with orthonormal columns drawn per boundary: the pair starts as an orthogonal
 * projection of the residual stream onto a random k-dim subspace (x' = x Q Q^T), which keeps the scale of what it
 * keeps and, unlike two independent Gaussians (E[Wd Wu] = 0, a random map), keeps the direction of every kept
 * component, so the tied embedding / lm_head path survives the boundary at init. With passthrough the first k
 * channels already cross as identity; the projections start at GPT-2's small std (0.02) so they begin as a small
 * learned correction to plain truncation. Measured in docs/model.md (loss after 100 steps per init).
 */
function bottleneckWeight(spec: ParamSpec, boundary: number, passthrough: boolean, seed: number): Float32Array {
  const [rows, cols] = spec.shape;
  const down = spec.name.endsWith('.down.weight');
  const [C, k] = down ? [rows, cols] : [cols, rows];
  const out = new Float32Array(C * k);
  if (passthrough) {
    const next = normalSource(nameSeed(seed, spec.name));
    for (let i = 0; i < out.length; i++) out[i] = 0.02 * next();
    return out;
  }
  const q = orthonormalColumns(C, k, nameSeed(seed, `bottleneck.${boundary}`));
  if (down) out.set(q);
  else for (let i = 0; i < C; i++) for (let j = 0; j < k; j++) out[j * C + i] = q[i * k + j];
  return out;
}

/** Initial values of `specs` from `seed`; bottleneck parameters (biases 0) need the model's `bottleneck`. */
export function initParams(config: GPTConfig, specs: ParamSpec[], seed: number, bottleneck?: BottleneckConfig | null): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const bn = BOTTLENECK_NAME.exec(s.name);
    if (bn) {
      if (!bottleneck) throw new Error(`initParams: ${s.name} is a bottleneck parameter but no bottleneck config was given`);
      out.set(s.name, bn[3] === 'bias' ? new Float32Array(s.shape[0]) : bottleneckWeight(s, Number(bn[1]), bottleneck.passthrough, seed));
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
