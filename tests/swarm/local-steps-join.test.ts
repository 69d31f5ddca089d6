// Local-steps mode with joiners: a replica that joins mid-run receives its stage's shared outer state (θ_sync and
// the outer momentum) with the weights and AdamW moments. If it did not, its next outer step would start from
// another θ_sync and its parameters would differ from its stage's other replicas after that sync: every sync after
// the join must still leave all replicas of each stage bitwise equal.
import { afterEach, describe, expect, it } from 'vitest';
import type { StepReport } from '../../src/coordinator/coordinator';
import type { SwarmPeer } from '../../src/swarm/peer';
import { startSwarm, tinyRun, whenAssigned, type Swarm } from './harness';

let swarm: Swarm | undefined;
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
});

describe('local-steps mode: joiners', () => {
  it('two joiners (one per stage) receive the outer state; every later sync leaves all replicas bitwise equal', async () => {
    const run = tinyRun(
      'local-join',
      4,
      [
        [0, 2],
        [2, 4],
      ],
      {
        steps: 7,
        M: 6,
        compress: {
          act: { kind: 'fp32' },
          grad: { kind: 'fp32' },
          bottleneck: null,
          sync: { mode: 'local', H: 2, outerLr: 0.7, outerMomentum: 0.9, codec: { kind: 'int8', block: 64, rounding: 'nearest' } },
        },
      },
    );
    // Step 4 begins only once both joiners hold their stage, so the coordinator admits them at a step boundary
    // inside the run, however long their joins take on a loaded machine.
    let joinersHaveStages: Promise<unknown> | undefined;
    swarm = await startSwarm(run, 'local-join', {
      minPeers: 4,
      holdControl: (msg) => (msg.type === 'step-begin' && msg.step === 4 ? joinersHaveStages : undefined),
    });
    const sw = swarm;
    for (const id of ['l0', 'l1', 'l2', 'l3']) await sw.addPeer(id, 1000);
    const received: { peer: string; step: number }[] = [];
    let joiners: Promise<SwarmPeer[]> | undefined;
    sw.coordinator.events.on('step', (r: StepReport) => {
      if (r.step !== 1 || joiners) return;
      joiners = Promise.all(['j4', 'j5'].map((id) => sw.addPeer(id, 1000)));
      joinersHaveStages = joiners.then(
        (js) =>
          Promise.all(
            js.map((j) => {
              j.events.on('state-received', ({ step }) => received.push({ peer: j.peerId, step }));
              return whenAssigned(j);
            }),
          ),
        () => undefined,
      );
    });
    const reports = await sw.coordinator.finished();
    const js = await joiners;
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(js?.map((j) => j.runtime?.stageIndex).sort()).toEqual([0, 1]);
    expect(received.map((r) => r.peer).sort()).toEqual(['j4', 'j5'].map((l) => sw.idOf(l)).sort());
    // Both joined before the end and trained as replicas of their stage.
    const last = reports[reports.length - 1];
    expect(last.members.map((m) => m.length)).toEqual([3, 3]);
    for (const j of js ?? []) expect(j.runtime?.counters.forward).toBeGreaterThan(0);
    // Syncs after steps 1, 3, 5 and the last; every one left each stage's replicas agreeing.
    expect(reports.filter((r) => r.synced).map((r) => r.step)).toEqual([1, 3, 5, 6]);
    for (const r of reports) if (r.synced) expect(r.replicasAgree, `sync after step ${r.step}`).toBe(true);
    for (const s of [0, 1]) {
      const members = sw.peers.filter((p) => p.runtime?.stageIndex === s);
      expect(members.length).toBe(3);
      // Parameters only: inner AdamW moments are per replica in local-steps mode.
      const params = (p: SwarmPeer) => p.runtime?.stage.params.readFlat('params') ?? Promise.reject(new Error(`${p.peerId} has no stage`));
      const first = Buffer.from((await params(members[0])).buffer);
      for (const p of members.slice(1)) expect(Buffer.compare(Buffer.from((await params(p)).buffer), first), `stage ${s}: ${p.peerId}`).toBe(0);
    }
  }, 150_000);
});
