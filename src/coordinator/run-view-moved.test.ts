import { describe, expect, it } from 'vitest';
import { buildRun } from './run-builder';
import { emptyRunView, reduceRunView, type RunViewInput } from './run-view';

describe('run view: live rebalancing', () => {
  it('a moved peer shows its new stage, waiting for the next membership, and the move is logged with its reason', () => {
    const run = buildRun({ steps: 3, microbatches: 2, 'batch-size': 2, 'block-size': 8, 'run-id': 'r' }, 20);
    const inputs: RunViewInput[] = [
      { kind: 'started', run },
      { kind: 'assigned', peerId: 'p', stage: 0 },
      { kind: 'membership', epoch: 1, stages: [['p'], ['q']], joins: [] },
      { kind: 'moved', peerId: 'p', from: 0, to: 1, reason: 'stage 1 is the bottleneck' },
    ];
    const v = inputs.reduce(reduceRunView, emptyRunView());
    const p = v.peers.find((x) => x.id === 'p');
    expect(p).toMatchObject({ stage: 1, state: 'assigned' });
    expect(v.events.map((e) => e.text)).toContain('p moved from stage 0 to stage 1: stage 1 is the bottleneck');
  });
});
