import { describe, expect, it } from 'vitest';
import { Rebalancer, type StepTiming } from './rebalance';

/** Timings of one step: every member of stage s busy `ms[s]` (a member listed in `slow` x its factor), 2 passes. */
function timings(members: string[][], ms: number[], slow: Record<string, number> = {}): Map<string, StepTiming> {
  const out = new Map<string, StepTiming>();
  members.forEach((m, s) => m.forEach((p) => out.set(p, { busyMs: ms[s] * (slow[p] ?? 1), passes: 2 })));
  return out;
}

const M33 = [
  ['a0', 'a1', 'a2'],
  ['b0', 'b1', 'b2'],
];

describe('Rebalancer', () => {
  it('moves the fastest replica of an over-served stage to a stage twice as slow, after `window` steps', () => {
    const r = new Rebalancer();
    r.record(M33, timings(M33, [900, 900])); // the membership's first step (pipelines compile): not a sample
    expect(r.decide(M33, false)).toBeNull();
    r.record(M33, timings(M33, [100, 200], { a1: 0.8 }));
    expect(r.decide(M33, false)).toBeNull(); // one sample
    r.record(M33, timings(M33, [100, 200], { a1: 0.8 }));
    expect(r.decide(M33, false)).toBeNull();
    r.record(M33, timings(M33, [100, 200], { a1: 0.8 }));
    const move = r.decide(M33, false);
    expect(move).not.toBeNull();
    expect(move).toMatchObject({ peerId: 'a1', from: 0, to: 1 });
    // Loads: stage 0 (80 + 100 + 100) / 3, stage 1 200; after: stage 0 x 3/2 = 140, stage 1 x 3/4 = 150.
    expect(move!.loads[1]).toBeCloseTo(200);
    expect(move!.predictedMax).toBeCloseTo(150);
    expect(move!.reason).toMatch(/stage 1 is the bottleneck/);
  });

  it('does not move when the stages are balanced or the gain is under 15%', () => {
    const r = new Rebalancer();
    for (let i = 0; i < 5; i++) r.record(M33, timings(M33, [100, 110]));
    expect(r.decide(M33, false)).toBeNull();
    // 3+3 needs the bottleneck at >= 1.5 / 0.85 = 1.76x the donor: 1.7x does not move, 1.8x does.
    const near = new Rebalancer();
    for (let i = 0; i < 4; i++) near.record(M33, timings(M33, [100, 170]));
    expect(near.decide(M33, false)).toBeNull();
    const over = new Rebalancer();
    for (let i = 0; i < 4; i++) over.record(M33, timings(M33, [100, 180]));
    expect(over.decide(M33, false)).toMatchObject({ from: 0, to: 1 });
  });

  it('takes the median: one slow step moves nothing', () => {
    const r = new Rebalancer();
    r.record(M33, timings(M33, [100, 100])); // the membership's first step
    r.record(M33, timings(M33, [100, 900])); // a hiccup
    r.record(M33, timings(M33, [100, 100]));
    r.record(M33, timings(M33, [100, 100]));
    expect(r.decide(M33, false)).toBeNull();
  });

  it('medians from two unrelated slow steps move nothing: the bottleneck must be one at every step of the window', () => {
    // Seen in CI (6 even peers on 2 cores beside another suite): stage 0 slow at two steps, stage 1 at the one before.
    // Medians 120 / 46 promise -25%; at the first step stage 1 was the bottleneck, and the move would have hurt it.
    const noisy = new Rebalancer();
    noisy.record(M33, timings(M33, [100, 100])); // the membership's first step
    for (const ms of [
      [60, 98],
      [120, 46],
      [125, 40],
    ])
      noisy.record(M33, timings(M33, ms));
    expect(noisy.loads()).toEqual([120, 46]);
    expect(noisy.decide(M33, false)).toBeNull();
    // The same medians, stage 0 the bottleneck at every step: moved.
    const steady = new Rebalancer();
    steady.record(M33, timings(M33, [100, 100]));
    for (const ms of [
      [110, 50],
      [120, 46],
      [125, 40],
    ])
      steady.record(M33, timings(M33, ms));
    expect(steady.decide(M33, false)).toMatchObject({ from: 1, to: 0 });
  });

  it('never takes the only replica of a stage, and picks the donor whose loss hurts least', () => {
    const solo = [['a0'], ['b0', 'b1']];
    const r = new Rebalancer();
    for (let i = 0; i < 4; i++) r.record(solo, timings(solo, [400, 250]));
    expect(r.decide(solo, false)).toBeNull(); // stage 1 giving one of its 2 makes it the bottleneck: 250 x 2 > 400
    const gain = new Rebalancer();
    for (let i = 0; i < 4; i++) gain.record(solo, timings(solo, [400, 100]));
    expect(gain.decide(solo, false)).toMatchObject({ from: 1, to: 0, predictedMax: 200 });
    const r2 = new Rebalancer();
    for (let i = 0; i < 4; i++) r2.record(solo, timings(solo, [100, 400]));
    expect(r2.decide(solo, false)).toBeNull(); // the bottleneck's only possible donor has 1 replica
    const three = [['a0', 'a1'], ['b0', 'b1', 'b2'], ['c0']];
    const r3 = new Rebalancer();
    for (let i = 0; i < 4; i++) r3.record(three, timings(three, [150, 50, 400]));
    // Stage 0 donating: max(300, 50, 200) = 300; stage 1 donating: max(150, 75, 200) = 200: stage 1 donates.
    expect(r3.decide(three, false)).toMatchObject({ from: 1, to: 2 });
  });

  it('waits `window` steps after a membership change, never decides on another membership, not in local-steps mode', () => {
    const r = new Rebalancer();
    for (let i = 0; i < 4; i++) r.record(M33, timings(M33, [100, 300]));
    expect(r.decide(M33, true)).toBeNull(); // local-steps
    const moved = [
      ['a0', 'a2'],
      ['b0', 'b1', 'b2'],
    ];
    expect(r.decide(moved, false)).toBeNull(); // a1 is on its way: not the measured membership
    const after = [
      ['a0', 'a2'],
      ['b0', 'b1', 'b2', 'a1'],
    ];
    for (let i = 0; i < 3; i++) {
      r.record(after, timings(after, [100, 300]));
      expect(r.decide(after, false)).toBeNull();
    }
    r.record(after, timings(after, [100, 300]));
    expect(r.loads()).toEqual([100, 300]);
    expect(r.decide(after, false)).toMatchObject({ from: 0, to: 1 });
  });

  it('a peer that just moved is not moved again (no ping-pong); another replica of its stage may be', () => {
    const r = new Rebalancer({ restSteps: 12 });
    for (let i = 0; i < 4; i++) r.record(M33, timings(M33, [100, 300], { a1: 0.5 }));
    expect(r.decide(M33, false)).toMatchObject({ peerId: 'a1', from: 0, to: 1 });
    // Now stage 0 (2 replicas) is the bottleneck and a1 the fastest of stage 1: it rests, a twin goes instead.
    const after = [
      ['a0', 'a2'],
      ['b0', 'b1', 'b2', 'a1'],
    ];
    for (let i = 0; i < 4; i++) r.record(after, timings(after, [300, 100], { a1: 0.5 }));
    const back = r.decide(after, false);
    expect(back).toMatchObject({ from: 1, to: 0 });
    expect(back?.peerId).not.toBe('a1');
  });

  it('a stage with a member that sent no timing has no load', () => {
    const r = new Rebalancer();
    for (let i = 0; i < 4; i++) {
      const t = timings(M33, [100, 300]);
      t.delete('b2');
      r.record(M33, t);
    }
    expect(r.loads()).toEqual([100, null]);
    expect(r.decide(M33, false)).toBeNull();
  });

  it('speeds: measured tokens/s once known, a new replica at its twins median, else the benchmark', () => {
    const r = new Rebalancer();
    r.record(M33, timings(M33, [900, 900])); // the membership's first step: not measured
    r.record(M33, timings(M33, [100, 200], { b1: 2 })); // 2 passes: 50 and 100 (b1: 200) ms per pass
    const joined = [['a0', 'a1', 'a2'], ['b0', 'b1', 'b2', 'new'], ['c0']];
    const s = r.speeds(joined, () => 7, 32);
    expect(s[0]).toEqual([640, 640, 640]); // 32 tokens / 50 ms
    expect(s[1]).toEqual([320, 160, 320, 320]);
    expect(s[2]).toEqual([7]);
    // A peer measured on another stage is not measured on its new one.
    const swapped = [['b0'], ['a0']];
    expect(r.speeds(swapped, () => 7, 32)).toEqual([[7], [7]]);
  });
});
