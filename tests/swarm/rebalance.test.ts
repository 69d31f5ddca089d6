// Live rebalancing (docs/resilience.md "Live rebalancing"), S=2 x R=3 Node peers over real WebRTC:
//  - the three replicas of stage 1 become 2x slow (SwarmPeerOptions.slow, what `tabswarm peer --slow 2` sets) after
//    step 1: within a few steps the coordinator measures stage 1 as the bottleneck and moves one peer of stage 0 to
//    it ('moved'); the moved peer drops its stage, copies stage 1's weights + AdamW state from a live replica and
//    trains on; every step finishes and the weights are the single-peer engine's (nothing lost or counted twice);
//  - the same swarm without a slow stage: no move (the rule does not thrash on measurement noise).
// The step times before and after the move are printed (figures, not assertions: the machine is shared).
import { afterEach, describe, expect, it } from 'vitest';
import type { CoordinatorEvents, StepReport } from '../../src/coordinator/coordinator';
import type { SlowSpec } from '../../src/swarm/slow-compute';
import { compareToReference, reference, replicasIdentical, startSwarm, tinyRun, whenAssigned, type Swarm } from './harness';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  for (const c of cleanups.splice(0)) c();
});

const LABELS = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];

async function sixPeers(room: string, steps: number, M: number) {
  const run = tinyRun(
    room,
    4,
    [
      [0, 2],
      [2, 4],
    ],
    { steps, M, schedule: { lr: 3e-3, minLr: 3e-4, warmup: 1, decaySteps: steps } },
  );
  swarm = await startSwarm(run, room, { minPeers: 6 });
  const sw = swarm;
  const slow = new Map<string, SlowSpec>();
  for (const id of LABELS) {
    const spec: SlowSpec = { factor: 1 };
    const p = await sw.addPeer(id, 1000, { slow: spec });
    slow.set(p.peerId, spec);
  }
  for (const p of sw.peers) await whenAssigned(p);
  const byStage = [0, 1].map((s) => sw.peers.filter((p) => p.runtime?.stageIndex === s));
  return { run, sw, slow, byStage };
}

/** The coordinator's stage loads (ms per replica) after step `step`. */
const loadsAt = (sw: Swarm, step: number) =>
  `${step}:${sw.coordinator
    .stageLoads()
    .map((l) => (l === null ? '-' : l.toFixed(0)))
    .join('/')}`;

const fmtSteps = (reports: StepReport[]) =>
  reports.map((r) => `${r.step}:${r.ms.toFixed(0)}ms[${r.members.map((m) => m.length).join('+')}]`).join(' ');

describe('live rebalancing', () => {
  it('moves a peer of stage 0 to stage 1 when stage 1 is made 2x slow; it copies the state and trains; parity', async () => {
    // 8 microbatches a step: longer steps, so one hiccup of the shared machine weighs less in a step's load.
    const { run, sw, slow, byStage } = await sixPeers('rebalance', 20, 8);
    expect(byStage.map((m) => m.length)).toEqual([3, 3]);
    const SLOW_AFTER = 1; // steps 2.. run with a slow stage 1
    const moves: CoordinatorEvents['moved'][] = [];
    const loads: string[] = [];
    sw.coordinator.events.on('step', (r) => {
      queueMicrotask(() => loads.push(loadsAt(sw, r.step))); // after the coordinator recorded the step
      if (r.step === SLOW_AFTER) for (const p of byStage[1]) slow.get(p.peerId)!.factor = 2;
    });
    // Microbatches each stage-1 replica ran per step (the moved peer's show it trains).
    const perStep = new Map<string, number[]>();
    for (const p of sw.peers)
      p.events.on('progress', (pr) => {
        const rows = perStep.get(p.peerId) ?? [];
        rows[pr.step - 1] = p.runtime?.stageIndex === 1 ? p.runtime.counters.forward : -1;
        perStep.set(p.peerId, rows);
      });
    let movedAtStep = -1;
    sw.coordinator.events.on('moved', (m) => {
      moves.push(m);
      // The step just completed, for the first move (the one the slowdown causes; a loaded machine's noisy loads
      // may later justify another, which the checks below do not concern).
      if (moves.length === 1) movedAtStep = sw.coordinator.step;
    });
    const reports = await sw.coordinator.finished();
    const moved = sw.peers.find((p) => p.peerId === moves[0]?.peerId);
    const joinedAt = reports.findIndex((r) => moved && r.members[1].includes(moved.peerId));
    const before = reports.filter((r) => r.step > SLOW_AFTER && r.step <= movedAtStep).map((r) => r.ms);
    const after = reports.filter((r) => joinedAt >= 0 && r.step > joinedAt).map((r) => r.ms);
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
    console.log(
      `rebalance: slowdown from step ${SLOW_AFTER + 1}; moves ${JSON.stringify(moves)}; decided after step ${movedAtStep} ` +
        `(${movedAtStep - SLOW_AFTER} step(s) after the slowdown), first step with the moved peer ${joinedAt}; ` +
        `mean step ms slow before the move ${mean(before).toFixed(0)}, after ${mean(after).toFixed(0)} (first step after the move excluded); ` +
        `loads per step ${loads.join(' ')}; steps ${fmtSteps(reports)}; ` +
        `stage-1 forwards so far per step ${[...perStep].map(([p, rows]) => `${p.slice(0, 6)}:${rows.join(',')}`).join(' ')}`,
    );

    expect(reports.map((r) => r.step)).toEqual([...Array(run.steps).keys()]);
    expect(moves.length).toBeGreaterThanOrEqual(1);
    expect(moves[0]).toMatchObject({ from: 0, to: 1 });
    expect(byStage[0].map((p) => p.peerId)).toContain(moves[0].peerId);
    expect(movedAtStep).toBeGreaterThan(SLOW_AFTER);
    // Within a few steps of the slowdown: the run's first step is never a sample, 3 are. Usually 2-3 steps; but the
    // loads are wall-clock ms of 6 peers sharing 2 cores, and a loaded machine has hidden the slowdown for up to 9
    // steps (measured 1.4-1.6x instead of 2x), so the run is long enough (steps are ~0.25 s) and the bound is 15.
    expect(movedAtStep).toBeLessThanOrEqual(SLOW_AFTER + 15);
    // The moved peer joined stage 1 at the next step and trained there.
    expect(joinedAt).toBe(movedAtStep + 1);
    expect(reports.filter((r) => moved && r.members[1].includes(moved.peerId)).length).toBeGreaterThan(1);
    expect(moved!.runtime!.counters.forward).toBeGreaterThan(0);
    for (const r of reports) expect(r.replicasAgree).toBe(true);
    // Unless a later move (noisy loads on a shared machine) sent it back, it ends in stage 1 bitwise equal to a twin.
    const end = moved?.runtime?.stageIndex;
    expect(end === 1 || moves.slice(1).some((m) => m.peerId === moved?.peerId && m.to === 0)).toBe(true);
    const twin = sw.peers.find((p) => p !== moved && p.runtime?.stageIndex === end);
    expect(twin).toBeDefined();
    expect(await replicasIdentical(moved!, twin!)).toBe(true);

    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    const cmp = await compareToReference(sw.peers, ref.params);
    console.log(`rebalance vs single peer: ${cmp.checked} tensors, worst ${cmp.worst.name} max|diff| ${cmp.worst.maxAbs.toExponential(2)}`);
    for (let s = 0; s < run.steps; s++) expect(Math.abs(reports[s].loss - ref.losses[s])).toBeLessThan(1e-5 * Math.max(1, ref.losses[s]));
    expect(cmp.worst.score).toBeLessThan(1e-5);
  }, 180_000);

  it('no slow stage: no move', async () => {
    const { sw } = await sixPeers('rebalance-even', 8, 8);
    const moves: CoordinatorEvents['moved'][] = [];
    const loads: string[] = [];
    sw.coordinator.events.on('moved', (m) => moves.push(m));
    sw.coordinator.events.on('step', (r) => queueMicrotask(() => loads.push(loadsAt(sw, r.step))));
    const reports = await sw.coordinator.finished();
    console.log(`rebalance-even: loads per step ${loads.join(' ')}; moves ${JSON.stringify(moves)}; steps ${fmtSteps(reports)}`);
    expect(reports).toHaveLength(8);
    expect(moves).toEqual([]);
    // The measurement ran: every stage had a load by the end.
    expect(sw.coordinator.stageLoads().every((l) => l !== null && l > 0)).toBe(true);
  }, 180_000);
});
