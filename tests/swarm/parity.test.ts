// The swarm invariant (docs/swarm.md): S x R Node peers (one process, each with its own GPU device, real signaling
// server, real node-datachannel WebRTC) trained K steps end with the single-peer engine's weights on the same
// batches, within float tolerance; replicas of a stage are bitwise identical.
import { afterEach, describe, expect, it } from 'vitest';
import { compareToReference, reference, replicasIdentical, startSwarm, tinyRun, type Swarm } from './harness';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  for (const c of cleanups.splice(0)) c();
});

// Per tensor: max |swarm - reference| <= TOL * max(1, max |reference|). AdamW makes every update lr-sized, so a
// bias that started at 0 has magnitude ~steps*lr and a plain relative bound would test rounding of the update ratio.
const TOL = 1e-5;

function describeDiff(label: string, r: Awaited<ReturnType<typeof compareToReference>>): string {
  return (
    `${label}: ${r.checked} tensors, worst ${r.worst.name} max|diff| ${r.worst.maxAbs.toExponential(2)}; ` +
    `worst relative ${r.worstRel.name} ${r.worstRel.maxAbs.toExponential(2)} (${r.worstRel.rel.toExponential(2)} of its max |w|)`
  );
}

describe('swarm parity with the single-peer engine', () => {
  it('S=3, R=1 (3 layers, one per stage)', async () => {
    const run = tinyRun('parity-s3', 3, [
      [0, 1],
      [1, 2],
      [2, 3],
    ]);
    swarm = await startSwarm(run, 'parity-s3', { minPeers: 3 });
    for (const id of ['p0', 'p1', 'p2']) await swarm.addPeer(id, 1000);
    const t0 = performance.now();
    const reports = await swarm.coordinator.finished();
    const ms = performance.now() - t0;
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
    expect(swarm.peers.map((p) => p.runtime!.stageIndex)).toEqual([0, 1, 2]);

    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    const cmp = await compareToReference(swarm.peers, ref.params);
    console.log(
      `${describeDiff('S=3 R=1', cmp)}; ` +
        `losses swarm ${reports.map((r) => r.loss.toFixed(5)).join(' ')} ref ${ref.losses.map((l) => l.toFixed(5)).join(' ')}; ` +
        `step ms ${reports.map((r) => r.ms.toFixed(0)).join(' ')} (run ${ms.toFixed(0)} ms)`,
    );
    for (let s = 0; s < run.steps; s++) expect(Math.abs(reports[s].loss - ref.losses[s])).toBeLessThan(1e-5 * Math.max(1, ref.losses[s]));
    expect(cmp.worst.score).toBeLessThan(TOL);
    // The tied wte: first and last stage hold the same bits.
    const w0 = await swarm.peers[0].runtime!.stage.params.read('params');
    const w2 = await swarm.peers[2].runtime!.stage.params.read('params');
    expect(Buffer.compare(Buffer.from(w0.get('transformer.wte.weight')!.buffer), Buffer.from(w2.get('transformer.wte.weight')!.buffer))).toBe(0);
  }, 90_000);

  it('S=2, R=2 (4 layers, two per stage; all-reduce)', async () => {
    const run = tinyRun('parity-s2r2', 4, [
      [0, 2],
      [2, 4],
    ]);
    swarm = await startSwarm(run, 'parity-s2r2', { minPeers: 4 });
    for (const id of ['q0', 'q1', 'q2', 'q3']) await swarm.addPeer(id, 1000);
    const reports = await swarm.coordinator.finished();
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
    const byStage = [0, 1].map((s) => swarm!.peers.filter((p) => p.runtime!.stageIndex === s));
    expect(byStage.map((m) => m.length)).toEqual([2, 2]);
    for (const r of reports) expect(r.replicasAgree).toBe(true);
    for (const m of byStage) expect(await replicasIdentical(m[0], m[1])).toBe(true);
    // Both replicas of each stage did work: owners k mod 2 on the first stage, stochastic wiring into the second.
    for (const m of byStage) for (const p of m) expect(p.runtime!.counters.forward).toBeGreaterThan(0);
    console.log(`S=2 R=2 microbatch forwards per peer: ${swarm.peers.map((p) => `${p.peerId}=${p.runtime!.counters.forward}`).join(' ')}`);

    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    const cmp = await compareToReference(swarm.peers, ref.params);
    console.log(
      `${describeDiff('S=2 R=2', cmp)}; ` +
        `losses swarm ${reports.map((r) => r.loss.toFixed(5)).join(' ')} ref ${ref.losses.map((l) => l.toFixed(5)).join(' ')}; ` +
        `step ms ${reports.map((r) => r.ms.toFixed(0)).join(' ')}`,
    );
    for (let s = 0; s < run.steps; s++) expect(Math.abs(reports[s].loss - ref.losses[s])).toBeLessThan(1e-5 * Math.max(1, ref.losses[s]));
    expect(cmp.worst.score).toBeLessThan(TOL);
  }, 90_000);
});
