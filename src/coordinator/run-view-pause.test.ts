// The run view through a stage loss (docs/resilience.md "Stage loss"): paused with its reason, resumed, and after a
// rollback the re-run steps replace the old ones, so the loss curve and the tokens stay continuous.
import { describe, expect, it } from 'vitest';
import type { RunConfig } from '../protocol/run-config';
import type { StepReport } from './coordinator';
import { buildRun } from './run-builder';
import { emptyRunView, reduceRunView, type RunView, type RunViewInput } from './run-view';

const run: RunConfig = buildRun({ steps: 6, microbatches: 2, 'batch-size': 2, 'block-size': 8, 'run-id': 'r' }, 20);
const reduce = (inputs: RunViewInput[], from: RunView = emptyRunView()) => inputs.reduce(reduceRunView, from);
const report = (step: number, loss: number): StepReport => ({
  step,
  attempts: 1,
  loss,
  lr: 1e-3,
  gradNorm: 1,
  scale: 1,
  members: [['a'], ['b']],
  replicasAgree: true,
  ms: 100,
});
const steps = (n: number, loss: (s: number) => number): RunViewInput[] =>
  Array.from({ length: n }, (_, s) => ({ kind: 'step', report: report(s, loss(s)) }) as const);

describe('run view: stage loss', () => {
  it('paused, then resumed after a rollback: the re-run steps replace the old ones', () => {
    const v0 = reduce([{ kind: 'started', run }, ...steps(4, (s) => 10 - s)]);
    const paused = reduce([{ kind: 'paused', step: 4, reason: 'stage 1 has no live replica: restoring it from a checkpoint', stages: [1] }], v0);
    expect(paused.paused).toEqual({ step: 4, reason: 'stage 1 has no live replica: restoring it from a checkpoint' });
    expect(paused.events.at(-1)?.text).toMatch(/run paused at step 4: stage 1/);
    const resumed = reduce([{ kind: 'resumed', step: 2, from: 4, stages: [1] }], paused);
    expect(resumed.paused).toBeNull();
    expect(resumed.step).toBe(2);
    expect(resumed.losses).toEqual([10, 9]);
    expect(resumed.reports.map((r) => r.step)).toEqual([0, 1]);
    expect(resumed.tokens).toBe(2 * resumed.tokensPerStep);
    const done = reduce(steps(6, (s) => 20 - s).slice(2), resumed);
    expect(done.losses).toEqual([10, 9, 18, 17, 16, 15]);
    expect(done.reports.map((r) => r.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(done.tokens).toBe(6 * done.tokensPerStep);
  });

  it("a contributor's view follows the coordinator's run-state messages", () => {
    const v0 = reduce(
      [0, 1, 2].map((step) => ({ kind: 'control', from: 'coord', msg: { type: 'step-report', step, loss: 3 - step, ms: 1, attempts: 1 } }) as const),
    );
    const paused = reduce([{ kind: 'control', from: 'coord', msg: { type: 'run-state', paused: true, reason: 'stage 0 lost', step: 3 } }], v0);
    expect(paused.paused).toEqual({ reason: 'stage 0 lost', step: 3 });
    const back = reduce(
      [{ kind: 'control', from: 'coord', msg: { type: 'run-state', paused: false, reason: 'rolled back to step 1', step: 1 } }],
      paused,
    );
    expect(back.paused).toBeNull();
    expect(back.losses).toEqual([3]);
    expect(back.step).toBe(1);
    // A resume at the same step changes nothing but the pause.
    const same = reduce([{ kind: 'control', from: 'coord', msg: { type: 'run-state', paused: false, reason: 'restored', step: 3 } }], paused);
    expect(same.losses).toEqual([3, 2, 1]);
    expect(same.paused).toBeNull();
  });
});
