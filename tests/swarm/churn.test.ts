// Membership changes mid-run (docs/swarm.md, Membership), S=2 x R=2 Node peers over real WebRTC:
//  - a first-stage replica vanishes in the middle of a step: the coordinator re-runs the step (attempt 2) with its
//    microbatches owned by the twin; the step is not lost and training continues;
//  - a new peer joins mid-run: it is assigned the stage with the least compute per layer, copies weights + AdamW
//    state from a live replica between steps, and trains on, bitwise identical to its twin.
// The whole run still ends on the single-peer engine's weights: nothing was lost or counted twice.
//  - a joiner leaves while the new membership links up: the members waiting for its link stop at once (it left the
//    room and the next epoch no longer names it); the run goes on without a link timeout and no peer reports an error.
import { afterEach, describe, expect, it } from 'vitest';
import type { StepReport } from '../../src/coordinator/coordinator';
import type { SwarmPeer } from '../../src/swarm/peer';
import { compareToReference, reference, replicasIdentical, startSwarm, tinyRun, whenAssigned, type Swarm } from './harness';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  for (const c of cleanups.splice(0)) c();
});

describe('swarm churn', () => {
  it('a replica vanishes mid-step, then a peer joins mid-run; the run matches the single-peer engine', async () => {
    const run = tinyRun(
      'churn',
      4,
      [
        [0, 2],
        [2, 4],
      ],
      { steps: 5, schedule: { lr: 3e-3, minLr: 3e-4, warmup: 1, decaySteps: 5 } },
    );
    // The joiner must be in the run before it ends, however long its join benchmark takes on a loaded machine: step 3
    // begins only once the joiner holds its stage, so the coordinator admits it at the next step boundary (step 4).
    let joinerHasStage: Promise<unknown> | undefined;
    swarm = await startSwarm(run, 'churn', {
      minPeers: 4,
      holdControl: (msg) => (msg.type === 'step-begin' && msg.step === 3 ? joinerHasStage : undefined),
    });
    const sw = swarm;
    for (const id of ['c0', 'c1', 'c2', 'c3']) await sw.addPeer(id, 1000);
    const [c0, , c2] = sw.peers;

    // Kill c2 (a first-stage replica) right after its first forward of step 1: mid-step, with microbatches in flight.
    let killedAt: { step: number; attempt: number; mb: number } | undefined;
    const off = (await whenAssigned(c2)).events.on('forward', (ev) => {
      if (ev.step !== 1 || killedAt) return;
      killedAt = ev;
      off();
      setTimeout(() => c2.close(), 0);
    });

    // A newcomer joins after step 2 (the real join benchmark decides its announced throughput).
    let joiner: Promise<SwarmPeer> | undefined;
    const restarts: { step: number; attempt: number; reason: string }[] = [];
    sw.coordinator.events.on('restart', (r) => restarts.push(r));
    const joinT0 = { t: 0 };
    sw.coordinator.events.on('step', (r: StepReport) => {
      if (r.step === 2 && !joiner) {
        joinT0.t = performance.now();
        joiner = sw.addPeer('c4');
        joinerHasStage = joiner.then(whenAssigned, () => undefined); // a failed join releases the run (and fails below)
      }
    });

    const reports = await sw.coordinator.finished();
    const c4 = await joiner!;
    console.log(
      `churn: killed c2 at step ${killedAt?.step} mb ${killedAt?.mb}; restarts ${JSON.stringify(restarts)}; ` +
        `c4 throughput ${c4.throughput.toFixed(0)} tok/s -> stage ${c4.runtime?.stageIndex}; ` +
        `steps ${reports.map((r) => `${r.step}:${r.attempts}x ${r.ms.toFixed(0)}ms [${r.members.map((m) => m.join(',')).join('|')}]`).join(' ')}`,
    );

    expect(killedAt?.step).toBe(1);
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
    expect(reports[1].attempts).toBe(2); // step 1 was re-run, not lost
    // Peer ids are the peers' keys' (deterministic test keys: tests/support/identity.ts).
    expect(reports[1].members[0]).toEqual([c0.peerId]);
    expect(restarts.some((r) => r.step === 1 && r.reason.includes(`${c2.peerId} vanished`))).toBe(true);
    // The joiner is in the first stage (least compute per layer after c2 left) and trained the last step(s).
    expect(c4.runtime!.stageIndex).toBe(0);
    expect(reports[4].members[0]).toEqual([c0.peerId, c4.peerId]);
    expect(c4.runtime!.counters.forward).toBeGreaterThan(0);
    for (const r of reports) expect(r.replicasAgree).toBe(true);
    expect(await replicasIdentical(c0, c4)).toBe(true);
    const stage1 = sw.peers.filter((p) => p.runtime?.stageIndex === 1);
    expect(await replicasIdentical(stage1[0], stage1[1])).toBe(true);

    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    const live = sw.peers.filter((p) => p !== c2);
    const cmp = await compareToReference(live, ref.params);
    console.log(
      `churn vs single peer: ${cmp.checked} tensors, worst ${cmp.worst.name} max|diff| ${cmp.worst.maxAbs.toExponential(2)}; ` +
        `losses swarm ${reports.map((r) => r.loss.toFixed(5)).join(' ')} ref ${ref.losses.map((l) => l.toFixed(5)).join(' ')}`,
    );
    for (let s = 0; s < run.steps; s++) expect(Math.abs(reports[s].loss - ref.losses[s])).toBeLessThan(1e-5 * Math.max(1, ref.losses[s]));
    expect(cmp.worst.score).toBeLessThan(1e-5);
  }, 90_000);

  it('a last-stage replica vanishes mid-step: the step is re-run on its twin', async () => {
    const run = tinyRun(
      'churn-last',
      4,
      [
        [0, 2],
        [2, 4],
      ],
      { steps: 4 },
    );
    swarm = await startSwarm(run, 'churn-last', { minPeers: 4 });
    const sw = swarm;
    for (const id of ['l0', 'l1', 'l2', 'l3']) await sw.addPeer(id, 1000);
    const l3 = sw.peers[3];
    let killedAt: { step: number; mb: number } | undefined;
    (await whenAssigned(l3)).events.on('backward', (ev) => {
      // Routing follows measured round trips, so which step first sends l3 a microbatch is not fixed: the first after step 0.
      if (ev.step < 1 || killedAt) return;
      killedAt = ev; // it has computed a microbatch's loss and gradient: its contribution dies with it
      setTimeout(() => l3.close(), 0);
    });
    const reports = await sw.coordinator.finished();
    console.log(
      `churn-last: killed l3 at step ${killedAt?.step} mb ${killedAt?.mb}; steps ${reports.map((r) => `${r.step}:${r.attempts}x ${r.ms.toFixed(0)}ms`).join(' ')}`,
    );
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    const k = killedAt?.step ?? -1;
    expect(k, 'l3 computed no microbatch in steps 1-2').toBeGreaterThanOrEqual(1);
    expect(k).toBeLessThanOrEqual(2);
    expect(reports[k].attempts).toBe(2);
    const [l0, l1, l2] = sw.peers.map((p) => p.peerId);
    expect(reports[3].members).toEqual([[l0, l2], [l1]]);
    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    const cmp = await compareToReference(
      sw.peers.filter((p) => p !== l3),
      ref.params,
    );
    console.log(`churn-last vs single peer: worst ${cmp.worst.name} max|diff| ${cmp.worst.maxAbs.toExponential(2)}`);
    expect(cmp.worst.score).toBeLessThan(1e-5);
    expect(await replicasIdentical(sw.peers[0], sw.peers[2])).toBe(true);
  }, 90_000);

  it('a joiner leaves while the membership links up: no link timeout, no error, the run goes on', async () => {
    const run = tinyRun(
      'churn-joiner-leaves',
      4,
      [
        [0, 2],
        [2, 4],
      ],
      { steps: 4 },
    );
    // The joiner must be assigned before step 2 begins, so that the membership after step 1 admits it.
    let joinerHasStage: Promise<unknown> | undefined;
    swarm = await startSwarm(run, 'churn-joiner-leaves', {
      minPeers: 2,
      holdControl: (msg) => (msg.type === 'step-begin' && msg.step === 2 ? joinerHasStage : undefined),
    });
    const sw = swarm;
    for (const id of ['j0', 'j1']) await sw.addPeer(id, 1000);
    const [j0, j1] = sw.peers;
    // Equal compute per layer: the joiner takes stage 0 (ties go to the lower index) as its rank 1, so j1 (stage 1)
    // waits for the joiner's incoming link (the earlier member dials: src/swarm/links.ts dialsFirst).
    let joiner: SwarmPeer | undefined;
    let leftAt = 0;
    const errors: string[] = [];
    for (const p of [j0, j1]) p.events.on('error', (e) => errors.push(`${p.peerId}: ${e.message}`));
    let nextStepAt = 0;
    sw.coordinator.events.on('step', (r: StepReport) => {
      if (leftAt && !nextStepAt) nextStepAt = performance.now();
      if (r.step !== 1 || joinerHasStage) return;
      const joining = sw.addPeer('j2', 1000);
      joinerHasStage = joining.then(whenAssigned, () => undefined);
      void joining.then((p) => {
        joiner = p;
        p.events.on('state', (st) => {
          if (st !== 'linking' || leftAt) return;
          leftAt = performance.now();
          setTimeout(() => p.close(), 0);
        });
      });
    });
    const restarts: string[] = [];
    sw.coordinator.events.on('restart', (r) => restarts.push(r.reason));
    const reports = await sw.coordinator.finished();
    const gapMs = nextStepAt - leftAt;
    console.log(
      `churn-joiner-leaves: joiner ${joiner?.peerId} left while linking; steps ${reports.map((r) => `${r.step}:${r.attempts}x ${r.ms.toFixed(0)}ms`).join(' ')}; ` +
        `next step ${gapMs.toFixed(0)} ms after it left; errors ${JSON.stringify(errors)}; restarts ${JSON.stringify(restarts)}`,
    );
    expect(leftAt, 'the joiner never reached linking').toBeGreaterThan(0);
    expect(joiner?.runtime?.stageIndex ?? 0).toBe(0);
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    expect(reports[3].members).toEqual([[j0.peerId], [j1.peerId]]);
    // Before the fix j1 waited the whole link timeout (30 s) for a peer that had left and j0 retried its dial for a
    // connect timeout (10 s); both then reported errors.
    expect(errors).toEqual([]);
    expect(nextStepAt).toBeGreaterThan(0);
    expect(gapMs).toBeLessThan(5_000);
  }, 90_000);
});
