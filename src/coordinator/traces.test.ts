import { describe, expect, it } from 'vitest';
import type { ControlOf } from '../protocol/messages';
import { TraceBook } from './traces';
import { sampled } from './validation';
import type { RunConfig } from '../protocol/run-config';

type Trace = ControlOf<'step-trace'>;

function trace(stage: number, over: Partial<Trace>): Trace {
  return { type: 'step-trace', step: 3, attempt: 0, stage, part: 0, parts: 1, backward: [], sent: [], recv: [], ...over };
}

// 2 stages: a0, a1 first; b0, b1 last. mb 0: a0 -> b1; mb 1: a1 -> b0.
const members = [
  ['a0', 'a1'],
  ['b0', 'b1'],
];

function honest(): TraceBook {
  const b = new TraceBook(3, 0, members);
  expect(b.add('a0', trace(0, { backward: [0], sent: [[0, 'b1', 'x0']], recv: [[0, 'b1', 'g0', 's']] }))).toBeNull();
  expect(b.add('a1', trace(0, { backward: [1], sent: [[1, 'b0', 'x1']], recv: [[1, 'b0', 'g1', 's']] }))).toBeNull();
  expect(b.add('b0', trace(1, { backward: [1], sent: [[1, 'a1', 'g1']], recv: [[1, 'a1', 'x1', 's']], losses: [[1, 4.5]] }))).toBeNull();
  expect(b.add('b1', trace(1, { backward: [0], sent: [[0, 'a0', 'g0']], recv: [[0, 'a0', 'x0', 's']], losses: [[0, 4.25]] }))).toBeNull();
  return b;
}

describe('TraceBook', () => {
  it('neighbours that agree: no disagreement; routes, route losses, inputs, outputs and work from the traces', () => {
    const b = honest();
    expect(b.complete(() => true)).toBe(true);
    expect(b.disagreements()).toEqual([]);
    expect(b.route(0, 'a0')).toEqual(['a0', 'b1']);
    expect(b.route(1, 'a1')).toEqual(['a1', 'b0']);
    expect([...b.routeLosses(['a0', 'a1'])]).toEqual([
      [0, 4.25],
      [1, 4.5],
    ]);
    expect(b.inputsSentTo('b1')).toEqual([[0, 'act', 'x0']]);
    expect(b.inputsSentTo('a0')).toEqual([[0, 'grad', 'g0']]);
    expect(b.outputsOf('b0')).toEqual([[1, 'grad', 'g1']]);
    expect(b.outputsOf('a1')).toEqual([[1, 'act', 'x1']]);
    expect(b.work('a0')).toEqual({ forward: 1, backward: 1 });
    expect(b.work('b1')).toEqual({ forward: 1, backward: 1 });
  });

  it('a receiver that names another digest than its sender: one disagreement naming both', () => {
    const b = new TraceBook(3, 0, members);
    b.add('a0', trace(0, { backward: [0], sent: [[0, 'b1', 'x0']], recv: [[0, 'b1', 'g0', 's']] }));
    b.add('b1', trace(1, { backward: [0], sent: [[0, 'a0', 'g0']], recv: [[0, 'a0', 'LIE', 's']] }));
    expect(b.disagreements()).toEqual([{ mb: 0, sender: 'a0', receiver: 'b1', kind: 'act', sent: 'x0', received: 'LIE', receivedSig: 's' }]);
  });

  it('a payload received that nobody says it sent, and one sent that nobody received', () => {
    const b = new TraceBook(3, 0, members);
    b.add('a0', trace(0, { sent: [[0, 'b1', 'x0']] }));
    b.add('b1', trace(1, { recv: [[2, 'a0', 'x2', 's']] }));
    expect(b.disagreements()).toEqual([
      { mb: 0, sender: 'a0', receiver: 'b1', kind: 'act', sent: 'x0', received: null, receivedSig: null },
      { mb: 2, sender: 'a0', receiver: 'b1', kind: 'act', sent: null, received: 'x2', receivedSig: 's' },
    ]);
  });

  it('merges parts in order; refuses non-members, other attempts, second traces and inconsistent parts', () => {
    const b = new TraceBook(3, 0, members);
    expect(b.add('a0', trace(0, { part: 1, parts: 2, backward: [2], sent: [[2, 'b0', 'y']] }))).toBeNull();
    expect(b.complete(() => true)).toBe(false);
    expect(b.add('a0', trace(0, { part: 1, parts: 2 }))).toBe('inconsistent parts');
    expect(b.add('a0', trace(0, { part: 0, parts: 2, backward: [0], sent: [[0, 'b1', 'x']], contrib: 'c' }))).toBeNull();
    expect(b.traces.get('a0')).toMatchObject({
      backward: [0, 2],
      sent: [
        [0, 'b1', 'x'],
        [2, 'b0', 'y'],
      ],
      contrib: 'c',
    });
    expect(b.add('a0', trace(0, {}))).toBe('a second trace');
    expect(b.add('zz', trace(0, {}))).toMatch(/not a member/);
    expect(b.add('b0', trace(0, {}))).toMatch(/not a member of stage 0/);
    expect(b.add('b0', trace(1, { attempt: 1 }))).toBe('not this attempt');
    // A vanished member's trace is not waited for.
    expect(b.complete((p) => p === 'a0')).toBe(true);
  });
});

describe('sampled', () => {
  const run = (rate: number) => ({ seed: 7, trust: { aggregation: 'sum', validationRate: rate, strikes: 3 } }) as unknown as RunConfig;
  it('rate 1 samples every contribution, 0 none; a rate samples about that fraction, the same draw every time', () => {
    let n = 0;
    let all = 0;
    let none = 0;
    for (let step = 0; step < 200; step++)
      for (let r = 0; r < 10; r++) {
        if (sampled(run(0.25), step, 0, 1, r)) n++;
        if (sampled(run(1), step, 0, 1, r)) all++;
        if (sampled(run(0), step, 0, 1, r)) none++;
        expect(sampled(run(0.25), step, 0, 1, r)).toBe(sampled(run(0.25), step, 0, 1, r));
      }
    expect(all).toBe(2000);
    expect(none).toBe(0);
    expect(n / 2000).toBeGreaterThan(0.2);
    expect(n / 2000).toBeLessThan(0.3);
  });
});
