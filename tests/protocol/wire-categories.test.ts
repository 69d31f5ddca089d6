// Wire accounting's categories: every tensor kind the swarm sends maps to a category (nothing lands in `other`), and
// the fp32 counterfactual is the formula docs/compression.md states, checked against a hand count.
import { describe, expect, it } from 'vitest';
import { buildRun } from '../../src/coordinator/run-builder';
import { countParams } from '../../src/model/config';
import { WIRE_CONTROL, WIRE_LINK } from '../../src/net/wire-meter';
import { stepDoneSchema, stepReportSchema } from '../../src/protocol/messages';
import { addWireBytes, emptyWireBytes, fp32StepWireBytes, totalWireBytes, WIRE_KEY_CATEGORY, wireBytesOf } from '../../src/protocol/wire-categories';
import { ALLREDUCE_KIND } from '../../src/swarm/allreduce';
import { PIPELINE_KINDS } from '../../src/swarm/links';
import { SYNC_KIND } from '../../src/swarm/local-sync';
import { ROBUST_KIND } from '../../src/swarm/robust-reduce';
import { VALIDATION_KIND } from '../../src/protocol/validation-tensors';
import { STATE_KIND } from '../../src/swarm/state-transfer';

describe('wire categories', () => {
  it('maps every kind the swarm sends, as its senders spell it', () => {
    expect(PIPELINE_KINDS.map((k) => WIRE_KEY_CATEGORY[k])).toEqual(['activations', 'activation_grads', 'sync', 'validation']);
    expect(WIRE_KEY_CATEGORY[ROBUST_KIND]).toBe('sync');
    expect(WIRE_KEY_CATEGORY[VALIDATION_KIND]).toBe('validation');
    expect(WIRE_KEY_CATEGORY[ALLREDUCE_KIND]).toBe('sync');
    expect(WIRE_KEY_CATEGORY[SYNC_KIND]).toBe('sync');
    expect(WIRE_KEY_CATEGORY[STATE_KIND]).toBe('state');
    expect(WIRE_KEY_CATEGORY[WIRE_CONTROL]).toBe('control');
    expect(WIRE_KEY_CATEGORY[WIRE_LINK]).toBe('control');
  });

  it('sums bytes per category; an unknown kind is visible as other, never dropped or hidden in a category', () => {
    const w = wireBytesOf({ act: 12, grad: 7, allreduce: 100, tie: 5, 'stage-state': 9, [WIRE_CONTROL]: 3, [WIRE_LINK]: 1, mystery: 4 });
    expect(w).toEqual({ activations: 12, activation_grads: 7, sync: 105, state: 9, validation: 0, control: 4, other: 4 });
    expect(totalWireBytes(w)).toBe(141);
    // Keys of Object.prototype are kinds like any other.
    expect(wireBytesOf({ toString: 6, constructor: 1 }).other).toBe(7);
    expect(addWireBytes(w, { sync: 1 })).toEqual({ ...w, sync: 106 });
    expect(wireBytesOf({})).toEqual(emptyWireBytes());
  });

  it('fp32 counterfactual per step: activations, gradients, butterfly all-reduce and the tied wte', () => {
    const run = buildRun({ stages: 2, microbatches: 3, 'batch-size': 2, 'block-size': 8, 'n-embd': 16, 'n-head': 2, 'n-layer': 4 }, 20);
    const C = 16;
    const BT = 2 * 8;
    const members = [['a', 'b', 'c'], ['d']];
    const w = fp32StepWireBytes(run, members);
    expect(w.activations).toBe(3 * 1 * BT * C * 4);
    expect(w.activation_grads).toBe(3 * 1 * BT * C * 4);
    // Stage 0: wte + wpe + 2 blocks; 3 replicas -> 2*(3-1)*N*4. Stage 1 alone: no all-reduce. Tie: (3 + 1) wte copies.
    const wte = 20 * C;
    const total = countParams(run.model);
    const lnf = 2 * C;
    const blocks = (total - wte - 8 * C - lnf) / 4;
    const n0 = wte + 8 * C + 2 * blocks;
    expect(w.sync).toBe(2 * 2 * n0 * 4 + 4 * wte * 4);
    expect(w.state + w.validation + w.control + w.other).toBe(0);
    // One stage: nothing crosses a boundary, no tie.
    const oneRun = buildRun({ stages: 1, 'n-embd': 16, 'n-head': 2 }, 20);
    const one = fp32StepWireBytes(oneRun, [['a', 'b']]);
    expect(one.activations + one.activation_grads).toBe(0);
    expect(one.sync).toBe(2 * 1 * countParams(oneRun.model) * 4);
  });

  it('step-done and step-report carry wire bytes; negative or missing categories are refused', () => {
    const w = { activations: 1, activation_grads: 2, sync: 3, state: 0, control: 5, other: 0 };
    const done = { type: 'step-done', step: 0, attempt: 0, stage: 0, digest: 'd' };
    expect(stepDoneSchema.safeParse(done).success).toBe(true);
    expect(stepDoneSchema.safeParse({ ...done, wire: w }).success).toBe(true);
    expect(stepDoneSchema.safeParse({ ...done, wire: { ...w, sync: -1 } }).success).toBe(false);
    expect(stepDoneSchema.safeParse({ ...done, wire: { activations: 1 } }).success).toBe(false);
    const rep = { type: 'step-report', step: 0, loss: 1, ms: 1, attempts: 1 };
    expect(stepReportSchema.safeParse({ ...rep, wire: w, fp32: w, tokens: 10 }).success).toBe(true);
    expect(stepReportSchema.safeParse({ ...rep, tokens: -1 }).success).toBe(false);
  });
});
