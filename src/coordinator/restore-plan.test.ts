import { describe, expect, it } from 'vitest';
import { planRestore, type RestoreInput } from './restore-plan';
import type { CheckpointRef } from '../protocol/messages';

const ref = (stage: number, step: number, digest = `d${stage}-${step}`): CheckpointRef => ({ runId: 'r', stage, step, digest });

function input(o: Partial<RestoreInput> & { held?: Record<string, CheckpointRef[]> }): RestoreInput {
  return {
    step: o.step ?? 10,
    members: o.members ?? [['a'], []],
    joining: o.joining ?? [],
    holdings: o.holdings ?? new Map(Object.entries(o.held ?? {})),
  };
}

describe('planRestore', () => {
  it('a returning holder with a copy at the current step restores the lost stage; no rollback', () => {
    const plan = planRestore(input({ joining: [{ peer: 'b', stage: 1 }], held: { a: [ref(0, 10)], b: [ref(1, 10), ref(1, 5)] } }));
    expect(plan).toEqual({
      kind: 'restore',
      step: 10,
      stages: [['a'], ['b']],
      restores: [{ peer: 'b', stage: 1, step: 10, digest: 'd1-10' }],
      joins: [],
      assign: [{ peer: 'b', stage: 1 }],
      lost: [1],
      digests: [null, 'd1-10'],
    });
  });

  it('only an older copy: the whole run rolls back to the newest step every stage has a copy of', () => {
    const plan = planRestore(
      input({
        step: 12,
        members: [['a', 'c'], []],
        joining: [{ peer: 'b', stage: 1 }],
        held: { a: [ref(0, 10), ref(0, 5)], c: [ref(0, 5)], b: [ref(1, 10), ref(1, 5)] },
      }),
    );
    expect(plan.kind).toBe('restore');
    if (plan.kind !== 'restore') return;
    expect(plan.step).toBe(10);
    expect(plan.stages).toEqual([['a', 'c'], ['b']]);
    // a holds its own step-10 checkpoint; c does not: it joins from the restored a.
    expect(plan.restores).toEqual([
      { peer: 'a', stage: 0, step: 10, digest: 'd0-10' },
      { peer: 'b', stage: 1, step: 10, digest: 'd1-10' },
    ]);
    expect(plan.joins).toEqual([{ peer: 'c', stage: 0, source: 'a' }]);
    expect(plan.digests).toEqual(['d0-10', 'd1-10']);
  });

  it('a custodian of another stage holds the only copy: a new peer joins from its stored checkpoint (rollback)', () => {
    const plan = planRestore(
      input({
        step: 7,
        members: [['a'], []],
        joining: [{ peer: 'n', stage: 1 }],
        held: { a: [ref(0, 5), ref(1, 5)] },
      }),
    );
    expect(plan).toMatchObject({
      kind: 'restore',
      step: 5,
      stages: [['a'], ['n']],
      restores: [{ peer: 'a', stage: 0, step: 5 }],
      joins: [{ peer: 'n', stage: 1, source: 'a', checkpoint: 5 }],
    });
  });

  it('no peer waiting: a member of a stage with two replicas is moved to the lost stage', () => {
    const plan = planRestore(
      input({
        step: 5,
        members: [['a', 'c'], []],
        held: { a: [ref(0, 5), ref(1, 5)], c: [ref(0, 5)] },
      }),
    );
    expect(plan.kind).toBe('restore');
    if (plan.kind !== 'restore') return;
    // a is the custodian: it moves and restores the copy it holds; c keeps stage 0 as it is (no rollback).
    expect(plan.assign).toEqual([{ peer: 'a', stage: 1 }]);
    expect(plan.stages).toEqual([['c'], ['a']]);
    expect(plan.restores).toEqual([{ peer: 'a', stage: 1, step: 5, digest: 'd1-5' }]);
    expect(plan.joins).toEqual([]);
  });

  it('no copy anywhere, or no host: wait, saying why', () => {
    const none = planRestore(input({ joining: [{ peer: 'n', stage: 1 }], held: { a: [ref(0, 10)] } }));
    expect(none).toEqual({ kind: 'wait', reason: 'stage 1 lost (stage 1: no copy)', lost: [1] });
    const noHost = planRestore(input({ held: { a: [ref(0, 10), ref(1, 10)] } }));
    expect(noHost.kind).toBe('wait');
    // A copy of the lost stage older than every copy of the other stage: no common step.
    const noCommon = planRestore(input({ joining: [{ peer: 'b', stage: 1 }], held: { a: [ref(0, 10)], b: [ref(1, 5)] } }));
    expect(noCommon).toMatchObject({ kind: 'wait', reason: expect.stringMatching(/newest copy at step 5/) as unknown });
  });

  it('holders that disagree on a digest: the majority digest is the copy; the odd one joins instead', () => {
    const plan = planRestore(
      input({
        step: 5,
        members: [['a'], []],
        joining: [
          { peer: 'b', stage: 1 },
          { peer: 'x', stage: 1 },
          { peer: 'y', stage: 1 },
        ],
        held: { a: [ref(0, 5)], b: [ref(1, 5, 'bad')], x: [ref(1, 5)], y: [ref(1, 5)] },
      }),
    );
    expect(plan).toMatchObject({
      kind: 'restore',
      step: 5,
      restores: [
        { peer: 'x', stage: 1, step: 5, digest: 'd1-5' },
        { peer: 'y', stage: 1, step: 5, digest: 'd1-5' },
      ],
      joins: [{ peer: 'b', stage: 1, source: 'x' }],
    });
  });

  it('two lost stages of three, joiners of the live stage join it from its member', () => {
    const plan = planRestore(
      input({
        step: 4,
        members: [['a'], [], []],
        joining: [
          { peer: 'n', stage: 0 },
          { peer: 'b', stage: 1 },
          { peer: 'c', stage: 2 },
        ],
        held: { a: [ref(0, 4), ref(2, 4)], b: [ref(1, 4)] },
      }),
    );
    expect(plan).toMatchObject({
      kind: 'restore',
      step: 4,
      stages: [['a', 'n'], ['b'], ['c']],
      restores: [{ peer: 'b', stage: 1, step: 4 }],
      joins: [
        { peer: 'n', stage: 0, source: 'a' },
        { peer: 'c', stage: 2, source: 'a', checkpoint: 4 },
      ],
    });
  });
});
