// The counter-based hash behind stochastic rounding: u(key, i) depends only on the key and the element index, so
// every peer (and the single-peer engine, and a validator) draws the same bits. The WGSL side is `pcg` and the
// `quantize` of shaders/quantize.wgsl: u = (pcg(pcg(i) ^ keyHash(key)) >> 8) * 2^-24.
import type { RoundingKey } from './types';

/** PCG hash (one pcg32 step and its output permutation), bit-identical to `pcg` in shaders/quantize.wgsl. */
export function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

const FIELDS = ['seed', 'step', 'mb', 'stream'] as const;

/** Throws unless every field is an integer in [0, 2^32). */
export function checkKey(key: RoundingKey, where: string): void {
  for (const f of FIELDS) {
    const v = key[f];
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${where}: rounding key ${f} must be an integer in [0, 2^32), got ${v}`);
  }
}

/** One u32 from the whole key: pcg(seed ^ pcg(step ^ pcg(mb ^ pcg(stream)))). */
export function keyHash(key: RoundingKey): number {
  return pcg(key.seed ^ pcg(key.step ^ pcg(key.mb ^ pcg(key.stream))));
}

/** The uniform in [0, 1) that element i draws under this key (what the GPU adds before floor). */
export function roundingUniform(hash: number, i: number): number {
  return (pcg(pcg(i) ^ hash) >>> 8) / 16777216;
}
