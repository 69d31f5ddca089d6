// Adoption plans (src/coordinator/adoption.ts): pure, from member claims.
import { describe, expect, it } from 'vitest';
import { Adoption } from './adoption';

const claim = (stage: number, step: number, attempt = 0, digest = `d${stage}`) => ({ runId: 'r', stage, step, attempt, digest });

function adoption(): Adoption {
  return new Adoption({ runId: 'r', stages: 3, step: 5, digests: ['d0', 'd1', null], membership: [['a'], ['b'], ['c', 'e']] });
}

describe('Adoption', () => {
  it('takes claims of its run only, and knows who of the saved membership is back', () => {
    const a = adoption();
    expect(a.claim('a', { ...claim(0, 5), runId: 'other' })).toMatch(/run other, not r/);
    expect(a.claim('a', claim(3, 5))).toMatch(/stage 3 of a run of 3 stages/);
    expect(a.claim('a', claim(0, 5))).toBeNull();
    expect(a.missing()).toEqual(['b', 'c', 'e']);
    for (const p of ['b', 'c', 'e']) a.claim(p, claim(['b', 'c', 'e'].indexOf(p) > 0 ? 2 : 1, 5));
    expect(a.allBack()).toBe(true);
  });

  it('the newest step every stage has a current claimant at; the rest join; attempts above every claim', () => {
    const a = adoption();
    a.claim('a', claim(0, 6, 2));
    a.claim('b', claim(1, 6, 0));
    a.claim('c', claim(2, 5, 7));
    expect(a.plan()).toBeNull(); // stage 2 only at 5, stages 0 and 1 only at 6
    a.claim('f', claim(2, 6, 1, 'anything')); // step 6: after the save, no digest to check
    a.claim('g', claim(1, 5, 0, 'wrong')); // the saved step with another digest: not current
    const p = a.plan();
    expect(p?.step).toBe(6);
    expect(p?.attempt).toBe(8);
    expect([...(p?.members ?? [])]).toEqual([
      ['a', 0],
      ['b', 1],
      ['f', 2],
    ]);
    expect([...(p?.joiners ?? [])]).toEqual([
      ['c', 2],
      ['g', 1],
    ]);
    a.drop('f');
    expect(a.plan()).toBeNull();
  });

  it('partial (the wait is over): the step with the most stages claimed, the newest of those; null without claims', () => {
    const a = adoption();
    expect(a.plan(true)).toBeNull();
    a.claim('a', claim(0, 5));
    a.claim('b', claim(1, 5));
    a.claim('c', claim(0, 6));
    const p = a.plan(true);
    expect(p?.step).toBe(5);
    expect([...(p?.members.keys() ?? [])]).toEqual(['a', 'b']);
    expect([...(p?.joiners.keys() ?? [])]).toEqual(['c']);
    expect(a.plan()).toBeNull();
  });
});
