import { describe, expect, it } from 'vitest';
import type { CheckpointRef, CheckpointStore, StageCheckpoint } from '../swarm/checkpoints';
import { checkpointsLine, observedStore, pausedLine, waitingLine } from './peer-resilience';

describe('the tab resilience lines', () => {
  it('says why the run paused, how long it waits for its coordinator, and what it holds', () => {
    expect(pausedLine(null)).toBe('');
    expect(pausedLine({ reason: 'stage 1 has no live replica', step: 4 })).toBe('run paused at step 4: stage 1 has no live replica');
    expect(waitingLine(null)).toBe('');
    expect(waitingLine(9_500)).toContain('(10 s left');
    expect(waitingLine(-4_000)).toContain('(0 s left');
    expect(checkpointsLine([])).toBe('none');
    const refs: CheckpointRef[] = [
      { runId: 'r', stage: 1, step: 6, digest: 'a' },
      { runId: 'r', stage: 1, step: 5, digest: 'b' },
    ];
    expect(checkpointsLine(refs)).toBe('2 stored · newest: stage 1 at step 6 (r)');
  });

  it('observedStore reports the refs after each save and prune, and passes everything through', async () => {
    const held: CheckpointRef[] = [];
    const inner: CheckpointStore = {
      save: (ck) => {
        held.unshift({ runId: ck.runId, stage: ck.stage, step: ck.step, digest: ck.digest });
        return Promise.resolve();
      },
      list: () => Promise.resolve([...held]),
      load: () => Promise.resolve(null),
      prune: (runId) => {
        held.splice(0, held.length, ...held.filter((r) => r.runId === runId));
        return Promise.resolve();
      },
    };
    const seen: number[] = [];
    const store = observedStore(inner, (refs) => seen.push(refs.length));
    const ck = (runId: string, step: number): StageCheckpoint => ({
      runId,
      stage: 0,
      step,
      layout: 'l',
      digest: `d${step}`,
      params: new Float32Array(1),
      m: new Float32Array(1),
      v: new Float32Array(1),
      savedAt: 0,
    });
    await store.save(ck('a', 1), 3);
    await store.save(ck('b', 2), 3);
    await store.prune('b');
    expect(seen).toEqual([1, 2, 1]);
    expect(await store.list()).toEqual([{ runId: 'b', stage: 0, step: 2, digest: 'd2' }]);
    expect(await store.load({ runId: 'b', stage: 0, step: 2 })).toBeNull();
  });
});
