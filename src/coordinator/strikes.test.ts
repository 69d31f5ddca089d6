import { describe, expect, it } from 'vitest';
import { judgeRobust, StrikeBook, type RobustReport } from './strikes';

const members = ['a', 'b', 'c', 'd'];
const rep = (value: number | null, digests: (string | null)[], excluded: { rank: number; reason: string }[] = []): RobustReport => ({
  value,
  robust: { digests, excluded },
});

describe('strikes', () => {
  it('evicts at the limit, once', () => {
    const b = new StrikeBook(3);
    expect(b.add('x')).toEqual({ strikes: 1, evict: false });
    expect(b.add('x')).toEqual({ strikes: 2, evict: false });
    expect(b.add('x')).toEqual({ strikes: 3, evict: true });
    expect(b.add('x')).toEqual({ strikes: 4, evict: false });
    expect(b.evicted('x')).toBe(true);
    expect(b.evicted('y')).toBe(false);
    expect(b.evictedIds).toEqual(['x']);
  });

  it('all agree: the majority value, no strike, no re-run', () => {
    const d = ['1', '2', '3', '4'];
    const v = judgeRobust(0, members, new Map(members.map((p) => [p, rep(5, d)])));
    expect(v).toEqual({ value: 5, strikes: [], rerun: null });
  });

  it('a rank every receiver excluded is struck; the step goes on', () => {
    const d = ['1', '2', '3', '4'];
    const ex = [{ rank: 2, reason: 'non-finite' }];
    const v = judgeRobust(1, members, new Map(members.map((p) => [p, rep(7, d, ex)])));
    expect(v.strikes.map((s) => s.peerId)).toEqual(['c']);
    expect(v.rerun).toBeNull();
    expect(v.value).toBe(7);
  });

  it('equivocation: the sender is struck and the step re-runs', () => {
    const reports = new Map([
      ['a', rep(7, ['1', '2', '3', '4'])],
      ['b', rep(7, ['1', '2', '3', '4'])],
      ['c', rep(8, ['1', '2', '3', 'X'])],
      ['d', rep(7, ['1', '2', '3', '4'])],
    ]);
    const v = judgeRobust(0, members, reports);
    expect(v.strikes.map((s) => s.peerId)).toEqual(['d']);
    expect(v.rerun).toMatch(/different vectors from d/);
  });

  it('a minority that excludes a rank the rest kept, or reports another aggregate, is struck itself', () => {
    const d = ['1', '2', '3', '4'];
    const reports = new Map([
      ['a', rep(7, d)],
      ['b', rep(7, d, [{ rank: 0, reason: 'norm' }])],
      ['c', rep(9, d)],
      ['d', rep(7, d)],
    ]);
    const v = judgeRobust(0, members, reports);
    expect(v.strikes.map((s) => s.peerId).sort()).toEqual(['b', 'c']);
    expect(v.value).toBe(7);
    expect(v.rerun).toBeNull();
  });

  it('no majority on the value: re-run', () => {
    const d = ['1', '2', '3', '4'];
    const reports = new Map([
      ['a', rep(1, d)],
      ['b', rep(2, d)],
      ['c', rep(1, d)],
      ['d', rep(2, d)],
    ]);
    expect(judgeRobust(0, members, reports).rerun).toMatch(/no majority/);
  });
});
