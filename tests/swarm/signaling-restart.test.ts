// Signaling server restart mid-run (docs/resilience.md, "Signaling server restart"), S=2 x R=2 Node peers over real
// WebRTC: the server is stopped while a step is in flight (right after a peer's first forward of step 2) and started
// again on the same port 2 s later. The data channels carry the step on; the control messages sent meanwhile wait in
// the clients' queues; every client rejoins, nobody is announced as left, and the run finishes all its steps on the
// single-peer engine's weights: training continued, nothing lost or counted twice.
import { afterEach, describe, expect, it } from 'vitest';
import type { StepReport } from '../../src/coordinator/coordinator';
import { compareToReference, reference, replicasIdentical, startSwarm, tinyRun, whenAssigned, type Swarm } from './harness';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  for (const c of cleanups.splice(0)) c();
});

const OUTAGE_MS = 2000;

describe('signaling server restart', () => {
  it('the server stops mid-step and comes back 2 s later: the run finishes every step on the single-peer weights', async () => {
    const run = tinyRun(
      'sigrestart',
      4,
      [
        [0, 2],
        [2, 4],
      ],
      { steps: 6, schedule: { lr: 3e-3, minLr: 3e-4, warmup: 1, decaySteps: 6 } },
    );
    swarm = await startSwarm(run, 'sigrestart', { minPeers: 4 });
    const sw = swarm;
    for (const id of ['s0', 's1', 's2', 's3']) await sw.addPeer(id, 1000);
    const clients = [{ name: 'coordinator', sig: sw.coordSig }, ...sw.peers.map((p) => ({ name: p.peerId, sig: p.signaling }))];
    const back: { name: string; ms: number; attempts: number }[] = [];
    const closed: string[] = [];
    const left: string[] = [];
    for (const c of clients) {
      cleanups.push(
        c.sig.on('reconnected', ({ ms, attempts }) => back.push({ name: c.name, ms, attempts })),
        c.sig.on('close', ({ reason }) => closed.push(`${c.name}: ${reason}`)),
        c.sig.on('peer-left', ({ peerId }) => left.push(`${c.name} saw ${peerId} leave`)),
      );
    }
    const vanished: unknown[] = [];
    const restarts: { step: number; attempt: number; reason: string }[] = [];
    sw.coordinator.events.on('vanished', (v) => vanished.push(v));
    sw.coordinator.events.on('restart', (r) => restarts.push(r));
    const stepAt = new Map<number, number>();
    sw.coordinator.events.on('step', (r: StepReport) => stepAt.set(r.step, performance.now()));

    // Stop the server right after the first forward of step 2: its microbatches are in flight.
    let stoppedAt: { t: number; step: number; mb: number } | undefined;
    let restarted: Promise<void> | undefined;
    const victim = sw.peers[0];
    const off = (await whenAssigned(victim)).events.on('forward', (ev) => {
      if (ev.step !== 2 || stoppedAt) return;
      off();
      stoppedAt = { t: performance.now(), step: ev.step, mb: ev.mb };
      restarted = sw
        .stopServer()
        .then(() => new Promise((r) => setTimeout(r, OUTAGE_MS)))
        .then(() => sw.startServer());
    });

    const reports = await sw.coordinator.finished();
    await restarted;
    const stepMs = reports.map((r) => r.ms);
    const others = stepMs.filter((_, s) => s !== 2).sort((a, b) => a - b);
    const median = others[Math.floor(others.length / 2)];
    const outage = Math.max(...back.map((b) => b.ms));
    console.log(
      `signaling restart: server stopped at step ${stoppedAt?.step} mb ${stoppedAt?.mb}, down ${OUTAGE_MS} ms; ` +
        `clients back after ${back.map((b) => `${b.ms.toFixed(0)} ms/${b.attempts}`).join(', ')} (max ${outage.toFixed(0)} ms); ` +
        `step 2 took ${stepMs[2].toFixed(0)} ms vs median ${median.toFixed(0)} ms of the others (+${(stepMs[2] - median).toFixed(0)} ms); ` +
        `restarts ${JSON.stringify(restarts)}; steps ${reports.map((r) => `${r.step}:${r.attempts}x ${r.ms.toFixed(0)}ms`).join(' ')}`,
    );

    expect(stoppedAt?.step).toBe(2);
    // The step was in flight across the outage: its report came after the server stopped.
    expect(stepAt.get(2) ?? 0).toBeGreaterThan(stoppedAt?.t ?? Infinity);
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3, 4, 5]);
    // Every client rejoined once; none gave up, none saw anyone leave; the coordinator lost nobody.
    expect(back.map((b) => b.name).sort()).toEqual(clients.map((c) => c.name).sort());
    expect(closed).toEqual([]);
    expect(left).toEqual([]);
    expect(vanished).toEqual([]);
    for (const r of reports) expect(r.replicasAgree).toBe(true);
    const byStage = [0, 1].map((s) => sw.peers.filter((p) => p.runtime?.stageIndex === s));
    for (const [a, b] of byStage) expect(await replicasIdentical(a, b)).toBe(true);

    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    const cmp = await compareToReference(sw.peers, ref.params);
    console.log(`signaling restart vs single peer: ${cmp.checked} tensors, worst ${cmp.worst.name} max|diff| ${cmp.worst.maxAbs.toExponential(2)}`);
    for (let s = 0; s < run.steps; s++) expect(Math.abs(reports[s].loss - ref.losses[s])).toBeLessThan(1e-5 * Math.max(1, ref.losses[s]));
    expect(cmp.worst.score).toBeLessThan(1e-5);
  }, 120_000);
});
