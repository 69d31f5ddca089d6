import { describe, expect, it } from 'vitest';
import type { RunConfig } from '../protocol/run-config';
import type { StepReport } from './coordinator';
import { buildRun } from './run-builder';
import { fp32StepWireBytes, type WireBytes } from '../protocol/wire-categories';
import {
  emptyRunView,
  finalRunSummary,
  fp32Ratios,
  lastLoss,
  reduceRunView,
  runSummary,
  runTokensPerSecond,
  stageTimes,
  wireBytesPerToken,
  wireLine,
  type RunView,
  type RunViewInput,
} from './run-view';

const run: RunConfig = buildRun({ steps: 3, microbatches: 2, 'batch-size': 2, 'block-size': 8, 'run-id': 'r' }, 20);
const reduce = (inputs: RunViewInput[], from: RunView = emptyRunView()) => inputs.reduce(reduceRunView, from);
const report = (step: number, loss: number, members: string[][], ms = 100): StepReport => ({
  step,
  attempts: 1,
  loss,
  lr: 1e-3,
  gradNorm: 1,
  scale: 1,
  members,
  replicasAgree: true,
  ms,
});
const peer = (v: RunView, id: string) => v.peers.find((p) => p.id === id);
const info = (from: string, throughput: number): RunViewInput => ({
  kind: 'control',
  from,
  msg: { type: 'peer-info', platform: 'node', gpu: true, throughput },
});
const stepKey = { step: 0, attempt: 0 };

describe('reduceRunView', () => {
  it('follows a peer from the room through a step, in one vocabulary of states', () => {
    let v = reduce([{ kind: 'connecting' }, { kind: 'started', run }, { kind: 'peer-joined', peerId: 'a' }]);
    expect(v).toMatchObject({ phase: 'waiting', runId: 'r', steps: 3, tokensPerStep: 2 * 2 * 8 });
    expect(v.stages).toEqual([
      { layerStart: 0, layerEnd: 2, members: [] },
      { layerStart: 2, layerEnd: 4, members: [] },
    ]);
    expect(peer(v, 'a')?.state).toBe('in room');
    v = reduce([info('a', 500)], v);
    expect(peer(v, 'a')).toMatchObject({ platform: 'node', throughput: 500, state: 'joined', stage: null });
    v = reduce([{ kind: 'assigned', peerId: 'a', stage: 0 }], v);
    expect(peer(v, 'a')).toMatchObject({ stage: 0, state: 'assigned' });
    v = reduce([{ kind: 'membership', epoch: 1, stages: [['a'], ['b']], joins: [] }], v);
    expect(peer(v, 'a')?.state).toBe('linking');
    expect(v.stages.map((s) => s.members)).toEqual([['a'], ['b']]);
    v = reduce([{ kind: 'control', from: 'a', msg: { type: 'swarm-ready', epoch: 1 } }], v);
    expect(peer(v, 'a')?.state).toBe('ready');
    v = reduce([{ kind: 'control', from: 'a', msg: { type: 'mb-done', ...stepKey, mb: 0 } }], v);
    expect(peer(v, 'a')).toMatchObject({ state: 'forward/backward', microbatches: 1 });
    v = reduce([{ kind: 'control', from: 'a', msg: { type: 'grad-sumsq', ...stepKey, stage: 0, value: 1 } }], v);
    expect(peer(v, 'a')?.state).toBe('reducing');
    v = reduce([{ kind: 'control', from: 'a', msg: { type: 'step-done', ...stepKey, stage: 0, digest: 'd' } }], v);
    expect(peer(v, 'a')?.state).toBe('applied');
    v = reduce([{ kind: 'peer-left', peerId: 'a' }], v);
    expect(peer(v, 'a')?.state).toBe('gone');
  });

  it('counts one message per microbatch and stage: mb-done on the first stage, mb-loss on the others', () => {
    const mb = (from: string, type: 'mb-done' | 'mb-loss'): RunViewInput => ({
      kind: 'control',
      from,
      msg: type === 'mb-done' ? { type, ...stepKey, mb: 0 } : { type, ...stepKey, mb: 0, loss: 1 },
    });
    const v = reduce([
      { kind: 'started', run },
      { kind: 'assigned', peerId: 'a', stage: 0 },
      { kind: 'assigned', peerId: 'b', stage: 1 },
      mb('a', 'mb-done'),
      mb('a', 'mb-loss'),
      mb('b', 'mb-done'),
      mb('b', 'mb-loss'),
      mb('b', 'mb-loss'),
    ]);
    expect(peer(v, 'a')?.microbatches).toBe(1);
    expect(peer(v, 'b')?.microbatches).toBe(2);
  });

  it('marks a joiner copying state, a vanished peer gone, an error with its detail; a step settles the rest', () => {
    let v = reduce([
      { kind: 'started', run },
      { kind: 'assigned', peerId: 'a', stage: 0 },
      { kind: 'assigned', peerId: 'b', stage: 1 },
      { kind: 'assigned', peerId: 'c', stage: 1 },
      { kind: 'membership', epoch: 2, stages: [['a'], ['b', 'c']], joins: ['c'] },
    ]);
    expect(peer(v, 'c')?.state).toBe('copying state');
    v = reduce(
      [
        { kind: 'control', from: 'b', msg: { type: 'status', state: 'error', detail: 'x'.repeat(500) } },
        { kind: 'vanished', peerId: 'c' },
      ],
      v,
    );
    expect(peer(v, 'b')?.state).toBe('error');
    expect(peer(v, 'b')?.detail).toHaveLength(200);
    v = reduce([{ kind: 'step', report: report(0, 3, [['a'], ['b', 'c']]) }], v);
    expect(v.peers.map((p) => p.state)).toEqual(['applied', 'error', 'gone']);
    expect(v.events.map((e) => e.text)).toContain('c vanished');
  });

  it('shows a frozen peer gone with the reason in the events; back as assigned when it answers again', () => {
    let v = reduce([
      { kind: 'started', run },
      { kind: 'assigned', peerId: 'a', stage: 0 },
      { kind: 'assigned', peerId: 'b', stage: 0 },
      { kind: 'membership', epoch: 1, stages: [['a', 'b'], []], joins: [] },
      { kind: 'frozen', peerId: 'b', reason: 'no pong within 2000 ms' },
    ]);
    expect(peer(v, 'b')?.state).toBe('gone');
    expect(v.events.map((e) => e.text)).toContain('b frozen: no pong within 2000 ms');
    v = reduce(
      [
        { kind: 'assigned', peerId: 'b', stage: 0 },
        { kind: 'membership', epoch: 2, stages: [['a', 'b'], []], joins: ['b'] },
      ],
      v,
    );
    expect(peer(v, 'b')?.state).toBe('copying state');
  });

  it('keeps losses per step, restarts as a note, tokens/s over the steps, and the summary', () => {
    let v = reduce([
      { kind: 'started', run },
      { kind: 'restart', step: 0, attempt: 1, reason: 'a vanished during step 0' },
    ]);
    expect(v.note).toBe('step 0 re-run (attempt 2): a vanished during step 0');
    expect(v.restarts).toBe(1);
    v = reduce(
      [
        { kind: 'step', report: report(0, 3, [['a'], ['b']], 100) },
        { kind: 'step', report: report(1, 2.5, [['a', 'c'], ['b']], 300) },
      ],
      v,
    );
    expect(v).toMatchObject({ phase: 'training', step: 2, losses: [3, 2.5] });
    expect(v.reports.map((r) => r.step)).toEqual([0, 1]);
    expect(v.stages.map((s) => s.members)).toEqual([['a', 'c'], ['b']]);
    expect(runTokensPerSecond(v)).toBeCloseTo((2 * 32 * 1000) / 400, 9);
    v = reduce([{ kind: 'finished' }], v);
    expect(v.phase).toBe('finished');
    expect(runSummary(v)).toEqual({ steps: 2, peers: 3, stages: 2, first_loss: 3, last_loss: 2.5, tokens_per_s: (2 * 32 * 1000) / 400 });
  });

  it('a contributor learns the run loss from step reports; gaps before a late join are NaN', () => {
    const v = reduce([
      { kind: 'control', from: 'coordinator', msg: { type: 'step-report', step: 2, loss: 2, ms: 5, attempts: 1 } },
      { kind: 'control', from: 'coordinator', msg: { type: 'step-report', step: 3, loss: null, ms: 5, attempts: 1 } },
    ]);
    expect(v.phase).toBe('training');
    expect(v.step).toBe(4);
    expect(v.losses).toHaveLength(4);
    expect(v.losses.slice(0, 2).every(Number.isNaN)).toBe(true);
    expect(v.losses[2]).toBe(2);
    expect(lastLoss(v)).toBe(2);
  });

  it('returns the same view for an input that changes nothing', () => {
    const v = reduce([{ kind: 'started', run }]);
    expect(reduceRunView(v, { kind: 'control', from: 'a', msg: { type: 'status', state: 'idle' } })).toBe(v);
    expect(reduceRunView(v, { kind: 'peer-left', peerId: 'nobody' })).toBe(v);
  });

  it('fails with the error', () => {
    const v = reduce([
      { kind: 'started', run },
      { kind: 'failed', error: 'stage 0 has no live replica' },
    ]);
    expect(v).toMatchObject({ phase: 'error', error: 'stage 0 has no live replica' });
  });
});

describe('time accounting in the run view', () => {
  const t = (compute: number, wait: number) => ({ wall: compute + wait, compute, codec: 1, send: 2, sync: 3, wait: wait - 6 });
  it("averages each stage's reported times over the latest steps; a stage no step reported is null", () => {
    const steps = [10, 20, 30, 40].map((c, i) => ({ ...report(i, 3, [['a'], ['b'], ['c']]), time: [t(c, 50), t(2 * c, 50), null] }));
    let v = reduce([{ kind: 'started', run }, ...steps.map((r): RunViewInput => ({ kind: 'step', report: r }))]);
    const all = stageTimes(v);
    expect(all).toHaveLength(3);
    expect(all[0]).toEqual(t(25, 50));
    expect(all[1]).toEqual(t(50, 50));
    expect(all[2]).toBeNull();
    // The latest two only.
    expect(stageTimes(v, 2)[0]).toEqual(t(35, 50));
    // A report without times (an older peer, a reloaded run) adds nothing.
    v = reduce([{ kind: 'step', report: report(4, 3, [['a'], ['b'], ['c']]) }], v);
    expect(stageTimes(v, 2)[0]).toEqual(t(35, 50));
  });

  it('nothing before the first report with times', () => {
    const v = reduce([
      { kind: 'started', run },
      { kind: 'step', report: report(0, 3, [['a']]) },
    ]);
    expect(stageTimes(v).every((x) => x === null)).toBe(true);
  });
});

describe('wire accounting in the run view', () => {
  const w = (x: Partial<WireBytes>): WireBytes => ({
    activations: 0,
    activation_grads: 0,
    sync: 0,
    state: 0,
    validation: 0,
    control: 0,
    other: 0,
    ...x,
  });
  const done = (from: string, wire: WireBytes): RunViewInput => ({
    kind: 'control',
    from,
    msg: { type: 'step-done', ...stepKey, stage: 0, digest: 'd', wire },
  });

  it("sums the peers' step-done bytes and the coordinator's own; per token over steps x M x B x T", () => {
    const members = [['a'], ['b']];
    const v = reduce([
      { kind: 'started', run },
      done('a', w({ activations: 640, control: 10 })),
      done('b', w({ activation_grads: 320, control: 6 })),
      { kind: 'wire', bytes: w({ control: 16 }) },
      { kind: 'step', report: report(0, 3, members) },
      done('a', w({ activations: 640, state: 64 })),
      done('b', w({ activation_grads: 320 })),
      { kind: 'step', report: report(1, 2.5, members) },
    ]);
    const tokens = 2 * run.M * run.B * run.T;
    expect(v.tokens).toBe(tokens);
    expect(v.wire).toEqual(w({ activations: 1280, activation_grads: 640, state: 64, control: 32 }));
    expect(wireBytesPerToken(v)).toEqual(w({ activations: 1280 / tokens, activation_grads: 640 / tokens, state: 64 / tokens, control: 32 / tokens }));
    const one = fp32StepWireBytes(run, members);
    expect(v.fp32).toEqual(w({ activations: 2 * one.activations, activation_grads: 2 * one.activation_grads, sync: 2 * one.sync }));
    const r = fp32Ratios(v);
    expect(r.pipeline).toBeCloseTo((2 * (one.activations + one.activation_grads)) / 1920, 12);
    expect(r.sync).toBeNaN(); // the tied wte was expected, but no sync bytes were reported: no ratio
    const s = finalRunSummary(v, 2.25);
    expect(Object.keys(s)).toEqual([
      'steps',
      'peers',
      'stages',
      'first_loss',
      'last_loss',
      'tokens_per_s',
      'val_loss',
      'wire_bytes_per_token',
      'ledger',
    ]);
    expect(s.ledger).toEqual({});
    expect(s.val_loss).toBe(2.25);
    expect(s.wire_bytes_per_token).toEqual({
      activations: 1280 / tokens,
      activation_grads: 640 / tokens,
      sync: 0,
      state: 64 / tokens,
      validation: 0,
      control: 32 / tokens,
    });
    expect(finalRunSummary(v, Number.NaN).val_loss).toBeNull();
    expect(wireLine(v)).toMatch(/^wire B\/token: act [0-9.]+ grad [0-9.]+ sync 0\.00 .* vs fp32: pipeline [0-9.]+x/);
    expect(wireLine(v)).not.toMatch(/OTHER/);
  });

  it("counts a local-steps sync's bytes from sync-done", () => {
    const v = reduce([
      { kind: 'started', run },
      { kind: 'control', from: 'a', msg: { type: 'sync-done', step: 0, stage: 0, digest: 'd', wire: w({ sync: 99 }) } },
      { kind: 'control', from: 'b', msg: { type: 'sync-done', step: 0, stage: 1, digest: 'd' } },
    ]);
    expect(v.wire).toEqual(w({ sync: 99 }));
  });

  it('shows bytes of an unmapped kind as OTHER', () => {
    const v = reduce([{ kind: 'started', run }, done('a', w({ other: 5 })), { kind: 'step', report: report(0, 3, [['a'], ['b']]) }]);
    expect(v.wire.other).toBe(5);
    expect(wireLine(v)).toMatch(/OTHER/);
  });

  it("a contributor takes the run's wire figures from the coordinator's step reports", () => {
    const wire = w({ activations: 100, control: 4 });
    const fp32 = w({ activations: 1000, sync: 50 });
    const v = reduce([
      { kind: 'control', from: 'coordinator', msg: { type: 'step-report', step: 0, loss: 2, ms: 5, attempts: 1, wire, fp32, tokens: 20 } },
    ]);
    expect(v.wire).toEqual(wire);
    expect(v.fp32).toEqual(fp32);
    expect(wireBytesPerToken(v).activations).toBe(5);
    expect(fp32Ratios(v).pipeline).toBe(10);
    expect(fp32Ratios(v).total).toBeCloseTo((1000 + 50 + 4) / 104, 12);
  });

  it('an empty coordinator wire input changes nothing', () => {
    const v = reduce([{ kind: 'started', run }]);
    expect(reduceRunView(v, { kind: 'wire', bytes: w({}) })).toBe(v);
  });

  it('keeps the ledger table the coordinator sends after each step, and puts it in the final summary', () => {
    const rows = [
      { id: 'a', credits: 300, share: 0.75, validated: 2, strikes: 0, evicted: false },
      { id: 'z', credits: 100, share: 0.25, validated: 0, strikes: 3, evicted: true },
    ];
    const input: RunViewInput = { kind: 'ledger', rows };
    let v = reduce([{ kind: 'started', run }, input]);
    expect(v.ledger).toEqual(rows);
    rows[0].credits = 1; // the view holds its own copy
    expect(v.ledger[0].credits).toBe(300);
    v = reduce([{ kind: 'ledger', rows: [{ id: 'a', credits: 400, share: 1, validated: 2, strikes: 0, evicted: false }] }], v);
    expect(finalRunSummary(v, null).ledger).toEqual({ a: 400 });
  });

  it("shows a contributor its own credits and share from the coordinator's credit messages", () => {
    const credit = (credits: number, total: number): RunViewInput => ({
      kind: 'control',
      from: 'coord',
      msg: { type: 'credit', credits, total, contributors: 3, validated: 1, strikes: 0 },
    });
    let v = reduce([credit(0, 0)]);
    expect(v.credit).toEqual({ credits: 0, total: 0, share: 0, contributors: 3, validated: 1, strikes: 0 });
    v = reduce([credit(250, 1000)], v);
    expect(v.credit).toEqual({ credits: 250, total: 1000, share: 0.25, contributors: 3, validated: 1, strikes: 0 });
  });
});
