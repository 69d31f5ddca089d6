import { beforeAll, describe, expect, it } from 'vitest';
import { testIdentity } from '../../tests/support/identity';
import type { Identity } from '../net/identity';
import { robustSigningText } from '../protocol/digest-signing';
import { judgeRobust, StrikeBook, type RobustContext, type RobustReport } from './strikes';

const members = ['a', 'b', 'c', 'd'];
const ids = new Map<string, Identity>();
const ctx: RobustContext = { runId: 'strikes-test', step: 4, attempt: 1, keyOf: (p) => ids.get(p)?.publicKey };
beforeAll(async () => {
  for (const p of members) ids.set(p, await testIdentity(`strikes ${p}`));
});

/** Rank j's own signature of `digest` (what a receiver got with the vector); null for no digest. */
async function sigOf(j: number, digest: string | null): Promise<string | null> {
  const id = ids.get(members[j]);
  if (digest === null || !id) return null;
  return id.sign(robustSigningText({ runId: ctx.runId, step: ctx.step, attempt: ctx.attempt, stage: 0, rank: j }, digest));
}

/** A report whose digests are all validly signed by their ranks, except the ranks in `forged` (signature of another digest). */
async function rep(
  value: number | null,
  digests: (string | null)[],
  excluded: { rank: number; reason: string }[] = [],
  forged: number[] = [],
): Promise<RobustReport> {
  const sigs = await Promise.all(digests.map((d, j) => sigOf(j, forged.includes(j) ? 'something-else' : d)));
  return { value, robust: { digests, sigs, excluded } };
}

async function reportsOf(entries: [string, Promise<RobustReport>][]): Promise<Map<string, RobustReport>> {
  return new Map(await Promise.all(entries.map(async ([p, r]) => [p, await r] as const)));
}

const d = ['1', '2', '3', '4'];

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

  it('all agree: the majority value, no strike, no re-run', async () => {
    const v = await judgeRobust(0, members, await reportsOf(members.map((p) => [p, rep(5, d)])), ctx);
    expect(v).toEqual({ value: 5, strikes: [], rerun: null });
  });

  it('a rank every receiver excluded is struck; the step goes on', async () => {
    const ex = [{ rank: 2, reason: 'non-finite' }];
    const v = await judgeRobust(0, members, await reportsOf(members.map((p) => [p, rep(7, d, ex)])), ctx);
    expect(v.strikes.map((s) => s.peerId)).toEqual(['c']);
    expect(v.rerun).toBeNull();
    expect(v.value).toBe(7);
  });

  it('equivocation proven (two validly signed digests for one slot): the sender is struck and the step re-runs', async () => {
    const reports = await reportsOf([
      ['a', rep(7, d)],
      ['b', rep(7, d)],
      ['c', rep(8, ['1', '2', '3', 'X'])],
      ['d', rep(7, d)],
    ]);
    const v = await judgeRobust(0, members, reports, ctx);
    expect(v.strikes.map((s) => s.peerId)).toEqual(['d']);
    expect(v.rerun).toMatch(/different vectors from d/);
  });

  it('framing: a receiver reporting a digest the sender never signed is struck itself; the sender is not', async () => {
    const reports = await reportsOf([
      ['a', rep(7, d)],
      ['b', rep(7, d)],
      // c claims d sent it 'X' with d's signature of something else (it cannot forge d's signature of 'X').
      ['c', rep(7, ['1', '2', '3', 'X'], [], [3])],
      ['d', rep(7, d)],
    ]);
    const v = await judgeRobust(0, members, reports, ctx);
    expect(v.strikes.map((s) => s.peerId)).toEqual(['c']);
    expect(v.strikes[0].reason).toMatch(/rank 3 without its valid signature/);
    expect(v.rerun).toBeNull();
    expect(v.value).toBe(7);
    // With no signature at all, the same.
    const unsigned = await rep(7, ['1', '2', '3', 'X']);
    unsigned.robust?.sigs.splice(3, 1, null);
    reports.set('c', unsigned);
    expect((await judgeRobust(0, members, reports, ctx)).strikes.map((s) => s.peerId)).toEqual(['c']);
  });

  it('no proof either way: a receiver reporting nothing from a rank the others got strikes that rank (kept rule)', async () => {
    const reports = await reportsOf([
      ['a', rep(7, d)],
      ['b', rep(7, ['1', '2', null, '4'], [{ rank: 2, reason: 'missing' }])],
      ['c', rep(7, d)],
      ['d', rep(7, d)],
    ]);
    const v = await judgeRobust(0, members, reports, ctx);
    expect(v.strikes.map((s) => s.peerId)).toEqual(['c']);
    expect(v.rerun).toMatch(/different vectors from c/);
  });

  it('a minority that excludes a rank the rest kept, or reports another aggregate, is struck itself', async () => {
    const reports = await reportsOf([
      ['a', rep(7, d)],
      ['b', rep(7, d, [{ rank: 0, reason: 'norm' }])],
      ['c', rep(9, d)],
      ['d', rep(7, d)],
    ]);
    const v = await judgeRobust(0, members, reports, ctx);
    expect(v.strikes.map((s) => s.peerId).sort()).toEqual(['b', 'c']);
    expect(v.value).toBe(7);
    expect(v.rerun).toBeNull();
  });

  it('no majority on the value: re-run', async () => {
    const reports = await reportsOf([
      ['a', rep(1, d)],
      ['b', rep(2, d)],
      ['c', rep(1, d)],
      ['d', rep(2, d)],
    ]);
    expect((await judgeRobust(0, members, reports, ctx)).rerun).toMatch(/no majority/);
  });
});
