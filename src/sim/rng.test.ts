import { describe, expect, it } from 'vitest';
import { Rng } from './rng';

function draws(seed: number, n: number): number[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => r.nextU32());
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    expect(draws(42, 100)).toEqual(draws(42, 100));
    expect(draws(42, 100)).not.toEqual(draws(43, 100));
    // seeds past 2^32 and fractions are not collapsed onto each other
    expect(draws(2 ** 32 + 1, 10)).not.toEqual(draws(1, 10));
  });

  it('refuses a non-finite seed', () => {
    expect(() => new Rng(Number.NaN)).toThrow(/finite/);
  });

  it('uniform draws fill [0, 1) evenly', () => {
    const r = new Rng(7);
    const buckets = new Array<number>(10).fill(0);
    const n = 100_000;
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < n; i++) {
      const u = r.next();
      lo = Math.min(lo, u);
      hi = Math.max(hi, u);
      buckets[Math.floor(u * 10)]++;
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    for (const b of buckets) expect(Math.abs(b - n / 10)).toBeLessThan(0.03 * (n / 10));
  });

  it('normal, lognormal and exponential have their stated moments', () => {
    const r = new Rng(11);
    const n = 50_000;
    const z = Array.from({ length: n }, () => r.normal(3, 2));
    expect(mean(z)).toBeCloseTo(3, 1);
    const sd = Math.sqrt(mean(z.map((x) => (x - 3) ** 2)));
    expect(sd).toBeGreaterThan(1.95);
    expect(sd).toBeLessThan(2.05);
    const ln = Array.from({ length: n }, () => r.lognormal(100, 0.5)).sort((a, b) => a - b);
    expect(ln[n / 2]).toBeGreaterThan(97);
    expect(ln[n / 2]).toBeLessThan(103);
    const ex = Array.from({ length: n }, () => r.exponential(5));
    expect(mean(ex)).toBeGreaterThan(4.9);
    expect(mean(ex)).toBeLessThan(5.1);
  });

  it('picks by weight and never picks a zero weight', () => {
    const r = new Rng(3);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[r.pickIndex([1, 0, 3])]++;
    expect(counts[1]).toBe(0);
    expect(counts[2] / counts[0]).toBeGreaterThan(2.8);
    expect(counts[2] / counts[0]).toBeLessThan(3.2);
    expect(r.pick([{ weight: 1, value: 'only' }])).toBe('only');
    expect(() => r.pickIndex([0, 0])).toThrow(/sum to 0/);
    expect(() => r.pickIndex([1, -1])).toThrow(/>= 0/);
  });

  it('shuffles to a permutation and makes peer-id-shaped ids', () => {
    const r = new Rng(5);
    const s = r.shuffle([1, 2, 3, 4, 5, 6, 7, 8]);
    expect([...s].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(r.hexId()).toMatch(/^[0-9a-f]{32}$/);
    expect(r.int(1)).toBe(0);
  });

  it('forks independent, reproducible streams by label', () => {
    const a = new Rng(9).fork('churn');
    const b = new Rng(9).fork('churn');
    const c = new Rng(9).fork('devices');
    const da = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(da);
    expect(Array.from({ length: 5 }, () => c.nextU32())).not.toEqual(da);
  });
});
