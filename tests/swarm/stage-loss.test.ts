// Stage loss on a real swarm (docs/resilience.md "Stage loss", "Custody"): S=2 stages of one replica each, Node peers
// over real WebRTC with their own checkpoint directories (src/cli/checkpoint-dir.ts).
//  (a) stage 1's only replica leaves after step 3: the run pauses (the other peer hears run-state); the same identity
//      comes back with its checkpoint store; its newest checkpoint is older than the run, so the whole run rolls back
//      to it; all steps finish with the single-peer engine's weights.
//  (b) custody: stage 1's only replica leaves for good after its checkpoint was copied to stage 0's peer; a fresh peer
//      joins, gets stage 1 from the custodian's copy (rollback to that step); all steps finish, parity holds.
//  (c) no copy anywhere: the run stops after the restore bound, saying stage 1 was lost and no copy exists.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointDir } from '../../src/cli/checkpoint-dir';
import type { ControlMessage, ControlOf } from '../../src/protocol/messages';
import type { RunConfig } from '../../src/protocol/run-config';
import type { SwarmPeer } from '../../src/swarm/peer';
import { compareToReference, reference, startSwarm, tinyRun, type Swarm } from './harness';

let swarm: Swarm | undefined;
let dir = '';
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = '';
});

function twoStages(runId: string, steps: number, every: number): RunConfig {
  return tinyRun(
    runId,
    4,
    [
      [0, 2],
      [2, 4],
    ],
    { steps, schedule: { lr: 3e-3, minLr: 3e-4, warmup: 1, decaySteps: steps }, checkpoint: { every, keep: 3 } },
  );
}

/** Every run-state a peer receives from the coordinator. */
function runStates(p: SwarmPeer): ControlOf<'run-state'>[] {
  const seen: ControlOf<'run-state'>[] = [];
  p.signaling.on('control', ({ msg }: { msg: ControlMessage }) => {
    if (msg.type === 'run-state') seen.push(msg);
  });
  return seen;
}

/** Resolves with the first control message the coordinator receives that `pick` accepts. */
function whenControl(sw: Swarm, pick: (from: string, msg: ControlMessage) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const off = sw.coordSig.on('control', ({ from, msg }) => {
      if (!pick(from, msg)) return;
      off();
      resolve();
    });
  });
}

async function parity(run: RunConfig, peers: SwarmPeer[]): Promise<number> {
  const ref = await reference(run);
  try {
    const { worst, checked } = await compareToReference(peers, ref.params);
    expect(checked).toBeGreaterThan(0);
    return worst.score;
  } finally {
    ref.rt.destroy();
  }
}

describe('stage loss', () => {
  it("(a) stage 1's only replica leaves; it comes back with its older checkpoint: the run rolls back to it and finishes at parity", async () => {
    const run = twoStages('loss-a', 6, 2);
    dir = await mkdtemp(join(tmpdir(), 'tabswarm-loss-'));
    swarm = await startSwarm(run, 'loss-a', { minPeers: 2 });
    const sw = swarm;
    const stores = { a: new CheckpointDir(join(dir, 'a')), b: new CheckpointDir(join(dir, 'b')) };
    const a = await sw.addPeer('a', 1000, { checkpoints: stores.a });
    const seen = runStates(a);
    const b = await sw.addPeer('b', 10, { checkpoints: stores.b });
    const events: string[] = [];
    sw.coordinator.events.on('step', (r) => {
      events.push(`step ${r.step}`);
      if (r.step === 2 && !events.includes('left')) {
        events.push('left');
        b.close(); // stage 1's only replica; its newest checkpoint is at step 2, the run is at 3
      }
    });
    let back: SwarmPeer | undefined;
    sw.coordinator.events.on('paused', (e) => {
      events.push(`paused ${e.step}`);
      void sw.addPeer('b', 10, { checkpoints: stores.b }).then((p) => (back = p));
    });
    sw.coordinator.events.on('resumed', (e) => events.push(`resumed ${e.step} from ${e.from}`));
    const reports = await sw.coordinator.finished();
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(events).toContain('paused 3');
    expect(events).toContain('resumed 2 from 3');
    // Step 2 ran twice: before the loss and after the rollback.
    expect(events.filter((e) => e === 'step 2')).toHaveLength(2);
    expect(seen.map((m) => [m.paused, m.step])).toEqual([
      [true, 3],
      [false, 2],
    ]);
    expect(back).toBeDefined();
    expect(reports.at(-1)?.members).toEqual([[sw.idOf('a')], [sw.idOf('b')]]);
    const score = await parity(run, [a, back!]);
    console.log(`stage loss (a): rolled back 3 -> 2, worst parity score ${score.toExponential(2)}`);
    expect(score).toBeLessThan(1e-5);
  }, 240_000);

  it("(b) custody: the lost stage's peer never returns; a fresh peer is restored from the custodian's copy", async () => {
    const run = twoStages('loss-b', 8, 2);
    dir = await mkdtemp(join(tmpdir(), 'tabswarm-loss-'));
    swarm = await startSwarm(run, 'loss-b', { minPeers: 2 });
    const sw = swarm;
    const a = await sw.addPeer('a', 1000, { checkpoints: new CheckpointDir(join(dir, 'a')) });
    const b = await sw.addPeer('b', 10, { checkpoints: new CheckpointDir(join(dir, 'b')) });
    // Custody after step 4 is stage 1's turn (after step 2 it was stage 0's): a keeps b's checkpoint at step 4.
    const custody = whenControl(sw, (from, msg) => from === a.peerId && msg.type === 'checkpoint-saved' && msg.stage === 1 && msg.step === 4);
    let fresh: SwarmPeer | undefined;
    const resumed: { step: number; from: number }[] = [];
    sw.coordinator.events.on('resumed', (e) => resumed.push(e));
    sw.coordinator.events.on('paused', () => {
      void sw.addPeer('n', 10, { checkpoints: new CheckpointDir(join(dir, 'n')) }).then((p) => (fresh = p));
    });
    let gone = false;
    void custody.then(() => {
      // Gone for good once the run is past the copy's step.
      sw.coordinator.events.on('step', (r) => {
        if (r.step === 5 && !gone) {
          gone = true;
          b.close();
        }
      });
    });
    const reports = await sw.coordinator.finished();
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(resumed).toEqual([{ step: 4, from: 6, stages: [1] }]);
    expect(fresh).toBeDefined();
    expect(reports.at(-1)?.members).toEqual([[sw.idOf('a')], [sw.idOf('n')]]);
    const score = await parity(run, [a, fresh!]);
    console.log(`stage loss (b): restored from custody, rolled back 6 -> 4, worst parity score ${score.toExponential(2)}`);
    expect(score).toBeLessThan(1e-5);
  }, 240_000);

  it('(c) no copy anywhere: the run stops after the restore bound, saying the stage was lost', async () => {
    const run = twoStages('loss-c', 6, 100); // no checkpoint in this run
    swarm = await startSwarm(run, 'loss-c', { minPeers: 2, restoreWaitMs: 3000 });
    const sw = swarm;
    const a = await sw.addPeer('a', 1000);
    const seen = runStates(a);
    const b = await sw.addPeer('b', 10);
    sw.coordinator.events.on('step', (r) => {
      if (r.step === 1) b.close();
    });
    await expect(sw.coordinator.finished()).rejects.toThrow(/stage 1 has no live replica and no copy of it exists/);
    expect(seen.map((m) => m.paused)).toEqual([true]);
  }, 120_000);
});
