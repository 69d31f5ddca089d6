// Random model parameters for GPU-vs-reference tests: N(0, 0.3) everywhere, LayerNorm gains around 1 (so layers
// neither vanish nor explode), plus the float64 copy the reference GPT takes and a max-magnitude helper for tolerances.
import type { ParamSpec } from '../../src/model/config';
import { randn, rng } from './random';

export function randomParams(specs: readonly ParamSpec[], seed: number): Map<string, Float32Array> {
  const rand = rng(seed);
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = randn(n, rand, 0.3);
    if (/ln_\d\.weight|ln_f\.weight/.test(s.name)) for (let i = 0; i < n; i++) v[i] = 1 + 0.2 * v[i];
    out.set(s.name, v);
  }
  return out;
}

export const to64 = (m: Map<string, Float32Array>): Map<string, Float64Array> => new Map([...m].map(([k, v]) => [k, Float64Array.from(v)]));

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
