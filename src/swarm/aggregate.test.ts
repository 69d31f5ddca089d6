// Robust aggregation against straightforward references (written the obvious way: sort each column, loop over
// vectors), on seeded random inputs at awkward sizes.
import { describe, expect, it } from 'vitest';
import { randn, rng, testSeed } from '../../tests/support/random';
import {
  aggregate,
  centeredClip,
  coordinateMedian,
  DEFAULT_CLIP_ITERS,
  DEFAULT_NORM_FACTOR,
  DEFAULT_TAU_FACTOR,
  median,
  trimmedMean,
} from './aggregate';

const SIZES = [1, 2, 3, 7, 31, 257, 1000];
const RANKS = [1, 2, 3, 4, 5, 6, 7, 16];

function refColumn(xs: readonly Float32Array[], i: number): number[] {
  return xs.map((x) => x[i]).sort((a, b) => a - b);
}

function refTrimmed(xs: readonly Float32Array[], trim: number, n: number): number[] {
  const k = xs.length;
  const t = Math.min(trim, Math.floor((k - 1) / 2));
  return Array.from({ length: n }, (_, i) => {
    const kept = refColumn(xs, i).slice(t, k - t);
    return kept.reduce((a, b) => a + b, 0) / kept.length;
  });
}

function refMedian(xs: readonly Float32Array[], n: number): number[] {
  return Array.from({ length: n }, (_, i) => median(refColumn(xs, i)));
}

function refCenteredClip(xs: readonly Float32Array[], n: number, tau: number | undefined, iters: number): number[] {
  let v = refMedian(xs, n);
  const dist = (x: Float32Array, c: number[]) => Math.hypot(...c.map((ci, i) => x[i] - ci));
  const radius = tau ?? DEFAULT_TAU_FACTOR * median(xs.map((x) => dist(x, v)));
  for (let it = 0; it < iters; it++) {
    const next = [...v];
    for (const x of xs) {
      const d = dist(x, v);
      const c = Math.min(1, radius / d);
      for (let i = 0; i < n; i++) next[i] += ((x[i] - v[i]) * (d > radius ? c : 1)) / xs.length;
    }
    v = next;
  }
  return v;
}

function close(got: ArrayLike<number>, want: readonly number[], rel = 1e-12): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(Number.isFinite(got[i])).toBe(true);
    expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(rel * (1 + Math.abs(want[i])));
  }
}

describe('robust aggregation', () => {
  it('trimmed mean, coordinate median and CenteredClip match their references', () => {
    const r = rng(testSeed('aggregate references'));
    for (const k of RANKS)
      for (const n of SIZES) {
        if (k * n > 4000 && n > 257) continue; // the reference CenteredClip is slow (Math.hypot over arrays)
        const xs = Array.from({ length: k }, () => randn(n, r, 10 ** Math.floor(r() * 4 - 2)));
        for (const trim of [0, 1, 2, 5]) close(trimmedMean(xs, trim, n), refTrimmed(xs, trim, n));
        close(coordinateMedian(xs, n), refMedian(xs, n));
        close(centeredClip(xs, n, undefined, 3), refCenteredClip(xs, n, undefined, 3), 1e-9);
        close(centeredClip(xs, n, 0.01, 5), refCenteredClip(xs, n, 0.01, 5), 1e-9);
      }
  });

  it('with honest, similar vectors trim 0 and CenteredClip both give the mean', () => {
    const r = rng(testSeed('aggregate honest mean'));
    for (const k of [1, 2, 3]) {
      const n = 333;
      const base = randn(n, r);
      const xs = Array.from({ length: k }, () => base.map((b) => b + 0.01 * (r() - 0.5)));
      const mean = Array.from({ length: n }, (_, i) => xs.reduce((s, x) => s + x[i], 0) / k);
      const tm = aggregate(xs, n, { mode: 'trimmed-mean' }); // default trim floor((k-1)/3) = 0 for k <= 3
      close(tm.result, mean, 1e-12);
      expect(tm.used).toEqual(xs.map((_, i) => i));
      expect(tm.excluded).toEqual([]);
      const cc = aggregate(xs, n, { mode: 'centered-clip' });
      close(cc.result, mean, 1e-9);
    }
  });

  it('refuses non-finite vectors and norm outliers, and survives them', () => {
    const r = rng(testSeed('aggregate byzantine'));
    for (const n of SIZES) {
      const honest = Array.from({ length: 4 }, () => randn(n, r));
      const nan = randn(n, r);
      nan[Math.floor(r() * n)] = Number.NaN;
      const inf = randn(n, r);
      inf[n - 1] = Number.NEGATIVE_INFINITY;
      const huge = honest[0].map((x) => x * -1000);
      const vectors = [honest[0], nan, honest[1], huge, null, honest[2], inf, honest[3]];
      for (const mode of ['trimmed-mean', 'centered-clip'] as const) {
        const a = aggregate(vectors, n, { mode });
        expect(a.excluded.map((e) => [e.rank, e.reason.split(' ')[0]])).toEqual([
          [1, 'non-finite'],
          [3, 'norm'],
          [6, 'non-finite'],
        ]);
        expect(a.used).toEqual([0, 2, 5, 7]);
        for (const x of a.result) expect(Number.isFinite(x)).toBe(true);
        // Bounded by the honest values coordinate-wise (trimmed mean: a mean of honest values).
        if (mode === 'trimmed-mean')
          for (let i = 0; i < n; i++) {
            const col = honest.map((h) => h[i]);
            expect(a.result[i]).toBeGreaterThanOrEqual(Math.min(...col) - 1e-12);
            expect(a.result[i]).toBeLessThanOrEqual(Math.max(...col) + 1e-12);
          }
      }
    }
  });

  it('an outlier just inside normFactor x the median is kept, just outside excluded', () => {
    const n = 10;
    const unit = new Float32Array(n).fill(1 / Math.sqrt(n)); // norm 1
    const mk = (s: number) => unit.map((x) => x * s);
    const inside = aggregate([mk(1), mk(1), mk(1), mk(DEFAULT_NORM_FACTOR * 0.999)], n, { mode: 'trimmed-mean' });
    expect(inside.excluded).toEqual([]);
    const outside = aggregate([mk(1), mk(1), mk(1), mk(DEFAULT_NORM_FACTOR * 1.01)], n, { mode: 'trimmed-mean' });
    expect(outside.excluded.map((e) => e.rank)).toEqual([3]);
  });

  it('CenteredClip bounds a single attacker by tau per iteration', () => {
    const r = rng(testSeed('aggregate centered clip bound'));
    const n = 64;
    const honest = Array.from({ length: 5 }, () => randn(n, r));
    const attacker = randn(n, r, 3.9); // far from the others
    const xs = [...honest, attacker];
    const tau = 0.5;
    const iters = DEFAULT_CLIP_ITERS;
    const v = centeredClip(xs, n, tau, iters);
    const v0 = coordinateMedian(xs, n);
    // Each iteration moves v by at most tau (a mean of vectors clipped to tau).
    const moved = Math.hypot(...Array.from(v, (x, i) => x - v0[i]));
    expect(moved).toBeLessThanOrEqual(tau * iters + 1e-12);
  });

  it('is deterministic: the same inputs give the same bits, whatever else ran before', () => {
    const r = rng(testSeed('aggregate deterministic'));
    const n = 513;
    const xs = Array.from({ length: 6 }, () => randn(n, r));
    for (const mode of ['trimmed-mean', 'centered-clip'] as const) {
      const a = aggregate(xs, n, { mode }).result;
      const b = aggregate(
        xs.map((x) => x.slice()),
        n,
        { mode },
      ).result;
      expect(Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer))).toBe(0);
    }
  });

  it('with nothing left, the aggregate is zero', () => {
    const a = aggregate([null, Float32Array.of(Number.NaN, 1)], 2, { mode: 'centered-clip' });
    expect([...a.result]).toEqual([0, 0]);
    expect(a.used).toEqual([]);
  });
});
