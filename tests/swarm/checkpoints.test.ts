// Stage checkpoints on a real swarm (docs/resilience.md, "Checkpoints", "Custody"): S=2 x R=2 Node peers over real
// WebRTC, each with its own checkpoint directory (src/cli/checkpoint-dir.ts).
//  - Every peer saves every `every` steps: the files exist, the newest `keep` per stage; a checkpoint's params are the
//    ones its replica reported in step-done; the replicas of a stage saved identical states; checkpoint-saved
//    reaches the coordinator's holdings.
//  - A restore (a hand-built swarm-members.restores, signed with the coordinator's key) puts back bitwise the state
//    saved, and the peer reports its digest in swarm-ready.
//  - Custody: a stage-1 replica sends its checkpoint to a stage-0 peer, which stores it (same digest) and reports
//    checkpoint-saved; a stage-1 replica then joins from that copy (joins[].checkpoint, a source of another stage).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointDir } from '../../src/cli/checkpoint-dir';
import type { ControlMessage, ControlOf } from '../../src/protocol/messages';
import type { StageCheckpoint } from '../../src/swarm/checkpoints';
import { digestFloats } from '../../src/model/digest';
import type { SwarmPeer } from '../../src/swarm/peer';
import { startSwarm, tinyRun, type Swarm } from './harness';
import { sameBits } from '../support/bits';

let swarm: Swarm | undefined;
let dir = '';
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Resolves with the first control message from a peer that `pick` accepts. */
function whenControl<T>(sw: Swarm, pick: (from: string, msg: ControlMessage) => T | undefined): Promise<T> {
  return new Promise((resolve) => {
    const off = sw.coordSig.on('control', ({ from, msg }) => {
      const got = pick(from, msg);
      if (got === undefined) return;
      off();
      resolve(got);
    });
  });
}

async function stateOf(p: SwarmPeer): Promise<{ params: Float32Array; m: Float32Array; v: Float32Array }> {
  const s = p.runtime!.stage.params;
  return { params: await s.readFlat('params'), m: await s.readFlat('m'), v: await s.readFlat('v') };
}

describe('stage checkpoints', () => {
  it('saved every N steps, restored bitwise, kept in custody by another stage and joined from there', async () => {
    const run = tinyRun(
      'ckpt',
      4,
      [
        [0, 2],
        [2, 4],
      ],
      { steps: 6, schedule: { lr: 3e-3, minLr: 3e-4, warmup: 1, decaySteps: 6 }, checkpoint: { every: 2, keep: 2 } },
    );
    dir = await mkdtemp(join(tmpdir(), 'tabswarm-ckpt-'));
    swarm = await startSwarm(run, 'ckpt', { minPeers: 4 });
    const sw = swarm;
    const stores = new Map<string, CheckpointDir>();
    // Every report the coordinator receives: step-done digests and checkpoint-saved, per peer.
    const stepDone = new Map<string, string>(); // `${stage}/${step}/${peer}` -> params digest
    const replicaDigests = (stage: number, step: number) => [...stepDone].filter(([k]) => k.startsWith(`${stage}/${step}/`)).map(([, d]) => d);
    const saved: { from: string; msg: ControlOf<'checkpoint-saved'> }[] = [];
    sw.coordSig.on('control', ({ from, msg }) => {
      if (msg.type === 'step-done') stepDone.set(`${msg.stage}/${msg.step}/${from}`, msg.digest);
      if (msg.type === 'checkpoint-saved') saved.push({ from, msg });
    });
    // The last step's saves (every member of the last step saves after it).
    const finalSaved = (peers: string[]) => peers.every((id) => saved.some(({ from, msg }) => from === id && msg.step === 6));
    for (const id of ['a0', 'a1', 'b0', 'b1']) {
      const store = new CheckpointDir(join(dir, id));
      stores.set(sw.idOf(id), store);
      await sw.addPeer(id, 1000, { checkpoints: store });
    }
    const reports = await sw.coordinator.finished();
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3, 4, 5]);
    const last = reports[5].members;
    if (!finalSaved(last.flat())) await whenControl(sw, () => (finalSaved(last.flat()) ? true : undefined));
    // Live rebalancing may have moved a peer between stages (src/coordinator/rebalance.ts): each peer's stage now.
    const byStage = last.map((ids) => ids.map((id) => sw.peers.find((p) => p.peerId === id)!));

    // Files: the newest 2 per (peer, stage); each one's params are its replica's step-done report of that step.
    const cks = new Map<string, StageCheckpoint>(); // `${peer}/${stage}/${step}`
    for (const p of sw.peers) {
      const store = stores.get(p.peerId)!;
      const refs = await store.list();
      const files = await readdir(join(store.dir, 'ckpt'));
      expect(files.sort()).toEqual(refs.map((r) => `stage${r.stage}-step${r.step}.safetensors`).sort());
      for (const s of [0, 1]) expect(refs.filter((r) => r.stage === s).length).toBeLessThanOrEqual(2);
      expect(refs.some((r) => r.stage === p.runtime!.stageIndex && r.step === 6)).toBe(true);
      for (const r of refs) {
        const ck = (await store.load(r))!;
        expect(ck.digest).toBe(r.digest);
        // Its own save: the params it reported; a custody copy (another stage's, the coordinator sends custody
        // every `every` steps): the params that stage's replicas reported.
        const own = stepDone.get(`${r.stage}/${r.step - 1}/${p.peerId}`);
        if (own !== undefined) expect(digestFloats(ck.params)).toBe(own);
        else expect(replicaDigests(r.stage, r.step - 1)).toContain(digestFloats(ck.params));
        cks.set(`${p.peerId}/${r.stage}/${r.step}`, ck);
        // checkpoint-saved said so, and the coordinator holds it.
        expect(saved.some(({ from, msg }) => from === p.peerId && msg.stage === r.stage && msg.step === r.step && msg.digest === r.digest)).toBe(
          true,
        );
        expect(sw.coordinator.holdings.of(p.peerId).some((h) => h.stage === r.stage && h.step === r.step && h.digest === r.digest)).toBe(true);
      }
    }
    // The replicas of a stage saved the same state; it changed between saves.
    for (const [s, ps] of byStage.entries()) {
      const d6 = ps.map((p) => cks.get(`${p.peerId}/${s}/6`)!.digest);
      expect(new Set(d6).size).toBe(1);
      for (const p of ps) {
        const d4 = cks.get(`${p.peerId}/${s}/4`)?.digest;
        if (d4 !== undefined) expect(d4).not.toBe(d6[0]);
      }
    }

    // Restore: every member holding its stage's step-4 checkpoint loads it (a rollback); bitwise the state saved.
    const stages = byStage.map((ps) => ps.map((p) => p.peerId));
    const speeds = stages.map((ps) => ps.map(() => 1000));
    const ready = (epoch: number, n: number) => {
      const got = new Map<string, string | undefined>();
      return whenControl(sw, (from, msg) => {
        if (msg.type !== 'swarm-ready' || msg.epoch !== epoch) return undefined;
        got.set(from, msg.digest);
        return got.size === n ? got : undefined;
      });
    };
    const restoring = sw.peers.filter((p) => cks.has(`${p.peerId}/${p.runtime!.stageIndex}/4`));
    expect(restoring.length).toBeGreaterThanOrEqual(2);
    const at4 = (p: SwarmPeer) => cks.get(`${p.peerId}/${p.runtime!.stageIndex}/4`)!;
    const restored = ready(1000, 4);
    const restores = restoring.map((p) => ({ peer: p.peerId, stage: p.runtime!.stageIndex, step: 4, digest: at4(p).digest }));
    sw.coordSig.sendControl({ type: 'swarm-members', epoch: 1000, stages, speeds, joins: [], restores, step: 4 }, '*');
    const readyDigests = await restored;
    for (const p of restoring) {
      const ck = at4(p);
      expect(readyDigests.get(p.peerId)).toBe(ck.digest);
      expect(p.runtime!.stepsDone).toBe(4);
      const now = await stateOf(p);
      expect(sameBits(now.params, ck.params) && sameBits(now.m, ck.m) && sameBits(now.v, ck.v)).toBe(true);
    }

    // Custody: stage 1's step-6 checkpoint from b-replica to a stage-0 keeper, which stores it and reports it.
    const [keeper] = byStage[0];
    const [source] = byStage[1];
    const joiner = byStage[1].at(-1)!; // another replica of stage 1 if there is one
    const kept = whenControl(sw, (from, msg) => (from === keeper.peerId && msg.type === 'checkpoint-saved' && msg.stage === 1 ? msg : undefined));
    sw.coordSig.sendControl({ type: 'custody', stage: 1, step: 6, source: source.peerId, keeper: keeper.peerId }, source.peerId);
    sw.coordSig.sendControl({ type: 'custody', stage: 1, step: 6, source: source.peerId, keeper: keeper.peerId }, keeper.peerId);
    const keptMsg = await kept;
    const original = cks.get(`${source.peerId}/1/6`)!;
    expect(keptMsg).toMatchObject({ runId: 'ckpt', stage: 1, step: 6, digest: original.digest });
    const copy = (await stores.get(keeper.peerId)!.load({ runId: 'ckpt', stage: 1, step: 6 }))!;
    expect(sameBits(copy.params, original.params) && sameBits(copy.m, original.m) && sameBits(copy.v, original.v)).toBe(true);
    expect(sw.coordinator.holdings.of(keeper.peerId).some((h) => h.stage === 1 && h.step === 6)).toBe(true);

    // A stage-1 replica joins from the keeper's copy (a source of another stage: the two link up for it).
    const joined = ready(1001, 4);
    sw.coordSig.sendControl(
      {
        type: 'swarm-members',
        epoch: 1001,
        stages,
        speeds,
        joins: [{ peer: joiner.peerId, stage: 1, source: keeper.peerId, checkpoint: 6 }],
        step: 6,
      },
      '*',
    );
    const joinDigests = await joined;
    expect(joinDigests.get(joiner.peerId)).toBe(original.digest);
    expect(joiner.runtime!.stepsDone).toBe(6);
    const now = await stateOf(joiner);
    expect(sameBits(now.params, original.params) && sameBits(now.m, original.m) && sameBits(now.v, original.v)).toBe(true);
    expect(sw.peers.map((p) => p.refusedTensors.size)).toEqual([0, 0, 0, 0]);
  });

  it('local-steps mode: saved after the outer sync on a sync step, with the outer state and the residual; restored bitwise', async () => {
    const run = tinyRun(
      'ckpt-local',
      4,
      [
        [0, 2],
        [2, 4],
      ],
      {
        steps: 6,
        M: 4,
        checkpoint: { every: 3, keep: 3 },
        compress: {
          act: { kind: 'fp32' },
          grad: { kind: 'fp32' },
          bottleneck: null,
          sync: { mode: 'local', H: 2, outerLr: 0.7, outerMomentum: 0.9, codec: { kind: 'int8', block: 64, rounding: 'nearest' } },
        },
      },
    );
    dir = await mkdtemp(join(tmpdir(), 'tabswarm-ckpt-local-'));
    swarm = await startSwarm(run, 'ckpt-local', { minPeers: 4 });
    const sw = swarm;
    const stores = new Map<string, CheckpointDir>();
    const syncDone = new Map<string, string>(); // `${peer}/${step}` -> params digest after the outer sync
    const saved: ControlOf<'checkpoint-saved'>[] = [];
    sw.coordSig.on('control', ({ from, msg }) => {
      if (msg.type === 'sync-done') syncDone.set(`${from}/${msg.step}`, msg.digest);
      if (msg.type === 'checkpoint-saved') saved.push(msg);
    });
    for (const id of ['l0', 'l1', 'l2', 'l3']) {
      const store = new CheckpointDir(join(dir, id));
      stores.set(sw.idOf(id), store);
      await sw.addPeer(id, 1000, { checkpoints: store });
    }
    const reports = await sw.coordinator.finished();
    expect(reports.filter((r) => r.synced).map((r) => r.step)).toEqual([1, 3, 5]);
    const done = () => saved.filter((m) => m.step === 6).length >= 4;
    if (!done()) await whenControl(sw, () => (done() ? true : undefined));

    const at3 = new Map<string, StageCheckpoint>();
    for (const p of sw.peers) {
      const store = stores.get(p.peerId)!;
      const own = (await store.list()).filter((r) => r.stage === p.runtime!.stageIndex);
      expect(own.map((r) => r.step)).toEqual([6, 3]);
      const ck6 = (await store.load(own[0]))!;
      const ck3 = (await store.load(own[1]))!;
      expect(ck6.outer && ck3.outer).toBeTruthy();
      // Step 6 ends with a sync: saved after it (the params the sync reported); step 3 does not.
      expect(digestFloats(ck6.params)).toBe(syncDone.get(`${p.peerId}/5`));
      expect(ck3.outer!.ef.some((x) => x !== 0)).toBe(true); // a residual of its own, kept
      at3.set(p.peerId, ck3);
    }

    const stages = reports[5].members;
    const ready = new Map<string, string | undefined>();
    const allReady = whenControl(sw, (from, msg) => {
      if (msg.type === 'swarm-ready' && msg.epoch === 2000) ready.set(from, msg.digest);
      return ready.size === 4 ? true : undefined;
    });
    const restores = sw.peers.map((p) => ({ peer: p.peerId, stage: p.runtime!.stageIndex, step: 3, digest: at3.get(p.peerId)!.digest }));
    sw.coordSig.sendControl(
      { type: 'swarm-members', epoch: 2000, stages, speeds: stages.map((ps) => ps.map(() => 1000)), joins: [], restores, step: 3 },
      '*',
    );
    await allReady;
    for (const p of sw.peers) {
      const ck = at3.get(p.peerId)!;
      expect(ready.get(p.peerId)).toBe(ck.digest);
      const now = (await p.runtime!.readCheckpointState())!;
      expect(now.step).toBe(3);
      const pairs: [Float32Array, Float32Array][] = [
        [now.params, ck.params],
        [now.m, ck.m],
        [now.v, ck.v],
        [now.outer!.sync, ck.outer!.sync],
        [now.outer!.mom, ck.outer!.mom],
        [now.outer!.ef, ck.outer!.ef],
      ];
      expect(pairs.map(([a, b]) => sameBits(a, b))).toEqual([true, true, true, true, true, true]);
    }
  });
});
