// Float64 CPU references of the wire codecs (docs/compression.md "Wire formats"), written from the definitions,
// not from the shader code: fp16 by scaling to the half's quantum, blockwise by the absmax rule, top-k by sorting.
import { roundingUniform } from '../../src/compress/rounding-key';

const f32 = Math.fround;

/** The binary16 value nearest to an f32 value (ties to even), as a number; |x| >= 65520 -> inf, NaN -> NaN. */
export function f16Ref(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  if (a >= 65520) return neg ? -Infinity : Infinity;
  if (a === 0) return neg ? -0 : 0;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const quantum = 2 ** (Math.max(e, -14) - 10);
  const m = a / quantum; // exact: a power-of-two scaling of an f32
  let r = Math.floor(m);
  const frac = m - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  const v = r * quantum;
  return neg ? -v : v;
}

export function roundHalfEven(y: number): number {
  const r = Math.floor(y);
  const frac = y - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 !== 0)) return r + 1;
  return r;
}

export interface BlockRef {
  scales: Float32Array;
  codes: Int32Array;
  /** Where the f32 division on the GPU may land on the other side of a rounding boundary (either code is right). */
  ambiguous: Uint8Array;
  values: Float32Array;
}

/** Blockwise absmax quantisation in float64 (scale as the f32 product the spec defines). */
export function blockRef(x: Float32Array, block: number, qmax: number, stochastic: boolean, keyHash: number): BlockRef {
  const n = x.length;
  const nb = Math.ceil(n / block);
  const scales = new Float32Array(nb);
  const codes = new Int32Array(n);
  const ambiguous = new Uint8Array(n);
  const values = new Float32Array(n);
  for (let b = 0; b < nb; b++) {
    const end = Math.min(n, (b + 1) * block);
    let absmax = 0;
    let finite = true;
    for (let i = b * block; i < end; i++) {
      if (!Number.isFinite(x[i])) finite = false;
      absmax = Math.max(absmax, Math.abs(x[i]));
    }
    const scale = !finite ? NaN : absmax < 2 ** -119 ? 0 : f32(absmax * f32(1 / qmax));
    scales[b] = scale;
    for (let i = b * block; i < end; i++) {
      if (!(scale > 0)) {
        codes[i] = 0;
        values[i] = 0 * scale;
        continue;
      }
      const y = x[i] / scale;
      let c: number;
      if (stochastic) {
        const z = y + roundingUniform(keyHash, i);
        c = Math.floor(z);
        ambiguous[i] = Math.abs(z - Math.round(z)) < 1e-5 * Math.max(1, Math.abs(z)) ? 1 : 0;
      } else {
        c = roundHalfEven(y);
        ambiguous[i] = Math.abs(Math.abs(y - Math.trunc(y)) - 0.5) < 1e-5 ? 1 : 0;
      }
      c = Math.max(-qmax, Math.min(qmax, c));
      codes[i] = c;
      values[i] = f32(c * scale);
    }
  }
  return { scales, codes, ambiguous, values };
}

/** Indices of the k largest |x| (ties to the lower index), increasing. */
export function topkRef(x: Float32Array, k: number): number[] {
  const idx = Array.from(x, (_, i) => i);
  idx.sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b);
  return idx.slice(0, k).sort((a, b) => a - b);
}
