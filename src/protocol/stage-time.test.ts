import { describe, expect, it } from 'vitest';
import { stepDoneSchema } from './messages';
import { meanStageTime, shareOf, stageTimeSchema } from './stage-time';

const t = { wall: 100, compute: 60, codec: 2, send: 8, sync: 10, wait: 20 };

describe('stage time', () => {
  it("a step-done's timing carries it, or not (an older peer)", () => {
    const base = { type: 'step-done', step: 3, attempt: 0, stage: 1, digest: 'ab' };
    expect(stepDoneSchema.parse({ ...base, timing: { busyMs: 60, passes: 4, parts: t } }).timing?.parts).toEqual(t);
    expect(stepDoneSchema.parse({ ...base, timing: { busyMs: 60, passes: 4 } }).timing?.parts).toBeUndefined();
  });

  it('refuses what a peer cannot have measured: negative, NaN, infinite, absurd or missing parts', () => {
    for (const bad of [
      { ...t, wait: -1 },
      { ...t, compute: Number.NaN },
      { ...t, send: Number.POSITIVE_INFINITY },
      { ...t, wall: 1e10 },
      { ...t, sync: '10' },
      { wall: 1, compute: 1 },
    ]) {
      expect(stageTimeSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('means over replicas and shares of the wall time', () => {
    expect(meanStageTime([])).toBeNull();
    const m = meanStageTime([t, { ...t, wall: 200, compute: 160 }]);
    expect(m).toEqual({ ...t, wall: 150, compute: 110 });
    expect(shareOf(t, 'compute')).toBeCloseTo(0.6);
    expect(shareOf({ ...t, wall: 0 }, 'compute')).toBe(0);
    // Overlapping measures never read as more than the whole.
    expect(shareOf({ ...t, compute: 150 }, 'compute')).toBe(1);
  });
});
