// Who may send which tensors (tensor-policy.ts); over real WebRTC: tests/swarm/trust-tensors.test.ts.
import { describe, expect, it } from 'vitest';
import { ALLREDUCE_KIND } from './allreduce';
import { SYNC_KIND } from './local-sync';
import { STATE_KIND } from './state-transfer';
import { CUSTODY_PULL_KIND, neededPeers } from './links';
import { pipelineProblem, TensorPolicy } from './tensor-policy';

const stages = [['a0', 'a1'], ['b0'], ['c0', 'c1', 'c2']];

describe('TensorPolicy', () => {
  it('nothing before a membership; only members afterwards, and only their kinds', () => {
    const p = new TensorPolicy('b0');
    expect(p.isMember('a0')).toBe(false);
    expect(p.refusal('a0', 'act')).toMatch(/not a member/);
    p.update({ stages, joins: [] });
    expect(p.isMember('a0')).toBe(true);
    expect(p.isMember('stranger')).toBe(false);
    expect(p.refusal('a1', 'act')).toBeNull();
    expect(p.refusal('c0', 'act')).toMatch(/not the previous stage/);
    expect(p.refusal('c2', 'grad')).toBeNull();
    expect(p.refusal('a0', 'grad')).toMatch(/not the next stage/);
    expect(p.refusal('a0', 'tie')).toMatch(/not the partner/);
    expect(p.refusal('a0', ALLREDUCE_KIND)).toMatch(/not a replica/);
    expect(p.refusal('a0', STATE_KIND)).toMatch(/not the join source/);
    expect(p.refusal('a0', 'whatever')).toMatch(/unknown tensor kind/);
    expect(p.refusal('stranger', 'act')).toMatch(/not a member/);
  });

  it('replica kinds from the own stage; tie from the partner stage; state only from the join source, once', () => {
    const p = new TensorPolicy('a1');
    p.update({ stages, joins: [{ peer: 'a1', stage: 0, source: 'a0' }] });
    expect(p.refusal('a0', ALLREDUCE_KIND)).toBeNull();
    expect(p.refusal('a0', SYNC_KIND)).toBeNull();
    expect(p.refusal('c1', 'tie')).toBeNull();
    expect(p.refusal('b0', 'tie')).toMatch(/partner/);
    expect(p.refusal('a0', STATE_KIND)).toBeNull();
    expect(p.refusal('c0', STATE_KIND)).toMatch(/join source/);
    p.stateReceived();
    expect(p.refusal('a0', STATE_KIND)).toMatch(/join source/);
    // A member that left the membership.
    p.update({ stages: [['a1'], ['b0'], ['c0']], joins: [] });
    expect(p.isMember('a0')).toBe(false);
    expect(p.refusal('a0', ALLREDUCE_KIND)).toMatch(/not a member/);
  });
});

describe('TensorPolicy: custody (src/swarm/peer-checkpoints.ts)', () => {
  it('a keeper admits stage state from its custody source only while expected; a pull from any member', () => {
    const p = new TensorPolicy('b0');
    p.update({ stages, joins: [] });
    expect(p.refusal('c1', CUSTODY_PULL_KIND)).toBeNull();
    expect(p.refusal('stranger', CUSTODY_PULL_KIND)).toMatch(/not a member/);
    expect(p.refusal('c1', STATE_KIND)).toMatch(/not the join source/);
    p.expectCustody('c1');
    p.expectCustody('c1'); // two copies expected from c1
    expect(p.refusal('c1', STATE_KIND)).toBeNull();
    expect(p.refusal('c0', STATE_KIND)).toMatch(/custody source/);
    p.update({ stages, joins: [] }); // a new membership keeps the expectation
    p.custodyDone('c1');
    expect(p.refusal('c1', STATE_KIND)).toBeNull();
    p.custodyDone('c1');
    expect(p.refusal('c1', STATE_KIND)).toMatch(/not the join source/);
  });
});

describe('neededPeers', () => {
  it('links a join source of another stage and its joiner, members only', () => {
    const joins = [{ peer: 'a1', source: 'c2' }];
    expect(neededPeers(stages, 'a1', 0).sort()).toEqual(['a0', 'b0', 'c0', 'c1', 'c2']);
    expect(neededPeers(stages, 'b0', 1, [{ peer: 'b0', source: 'c0' }]).sort()).toEqual(['a0', 'a1', 'c0', 'c1', 'c2']);
    expect(neededPeers([['a0'], ['b0'], ['c0'], ['d0']], 'a0', 0, [{ peer: 'a0', source: 'c0' }]).sort()).toEqual(['b0', 'c0', 'd0']);
    expect(neededPeers([['a0'], ['b0'], ['c0'], ['d0']], 'c0', 2, [{ peer: 'a0', source: 'c0' }]).sort()).toEqual(['a0', 'b0', 'd0']);
    expect(neededPeers([['a0'], ['b0'], ['c0'], ['d0']], 'c0', 2, [{ peer: 'x', source: 'c0' }]).sort()).toEqual(['b0', 'd0']);
    expect(neededPeers(stages, 'a1', 0, joins)).toEqual(neededPeers(stages, 'a1', 0));
  });
});

describe('pipelineProblem', () => {
  it('act from the previous stage, grad from the peer the microbatch went to, tie from the partner replica', () => {
    expect(pipelineProblem('act', 'a0', 'b0', 1, stages)).toBeNull();
    expect(pipelineProblem('act', 'c0', 'b0', 1, stages)).toMatch(/previous stage/);
    expect(pipelineProblem('grad', 'c1', 'b0', 1, stages, 'c1')).toBeNull();
    expect(pipelineProblem('grad', 'c2', 'b0', 1, stages, 'c1')).toMatch(/did not send/);
    expect(pipelineProblem('grad', 'a0', 'b0', 1, stages, 'a0')).toMatch(/next stage/);
    // a0 (i=0) receives from c[0], a1 (i=1) from c[1]; c2 (i=2) from a[0].
    expect(pipelineProblem('tie', 'c0', 'a0', 0, stages)).toBeNull();
    expect(pipelineProblem('tie', 'c2', 'a0', 0, stages)).toMatch(/partner replica/);
    expect(pipelineProblem('tie', 'c1', 'a1', 0, stages)).toBeNull();
    expect(pipelineProblem('tie', 'a0', 'c2', 2, stages)).toBeNull();
    expect(pipelineProblem('tie', 'a1', 'c2', 2, stages)).toMatch(/partner replica/);
    expect(pipelineProblem('tie', 'a0', 'b0', 1, stages)).toMatch(/end stages/);
  });
});
