import { describe, expect, it } from 'vitest';
import { apportion, ownersOf } from './owners';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `p${i}`);
const tally = (owners: string[]) => owners.reduce((m, o) => m.set(o, (m.get(o) ?? 0) + 1), new Map<string, number>());

describe('microbatch owners by throughput', () => {
  it('apportions 1:3 over M=8 as 2 and 6, interleaved', () => {
    expect(apportion(8, [1, 3])).toEqual([2, 6]);
    const owners = ownersOf(8, ['slow', 'fast'], [1, 3]);
    expect(tally(owners)).toEqual(
      new Map([
        ['slow', 2],
        ['fast', 6],
      ]),
    );
    // Spread over the step, not in one run at its end.
    expect(owners.indexOf('slow')).toBeLessThan(4);
    expect(owners.lastIndexOf('slow')).toBeGreaterThanOrEqual(4);
  });

  it('equal weights give exactly the round robin owners[k] = replicas[k % n]', () => {
    for (let n = 1; n <= 7; n++)
      for (let M = 1; M <= 30; M++) {
        const r = ids(n);
        expect(
          ownersOf(
            M,
            r,
            r.map(() => 1234.5),
          ),
        ).toEqual(Array.from({ length: M }, (_, k) => r[k % n]));
      }
  });

  it('a 1000x slower replica owns far fewer microbatches, but at least one', () => {
    const counts = apportion(64, [1, 1000, 1000, 1000]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(64);
    expect(counts[0]).toBe(1);
    expect(counts.slice(1).every((c) => c === 21)).toBe(true);
  });

  it('treats zero, NaN and infinite throughputs as the slowest valid one, or all equal when none is valid', () => {
    expect(apportion(8, [0, Number.NaN, 2, Number.POSITIVE_INFINITY])).toEqual([2, 2, 2, 2]);
    expect(apportion(6, [Number.NaN, 0, -1])).toEqual([2, 2, 2]);
    expect(apportion(10, [0, 2, 6])).toEqual([2, 2, 6]);
  });

  it('fewer microbatches than replicas: some own none, the sum is M', () => {
    expect(apportion(2, [1, 1, 5])).toEqual([0, 0, 2]);
    expect(ownersOf(0, ['a'], [1])).toEqual([]);
  });
});
