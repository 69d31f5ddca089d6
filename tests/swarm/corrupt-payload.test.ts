// A peer that sends a corrupt boundary payload (docs/compression.md): the receiver's codec refuses it, the receiver
// drops it, logs it and reports the sender to the coordinator (peer-report, shown in the run's events); the lost
// microbatch makes its step re-run as after any loss, and the run ends on the single-peer engine's weights as if
// nothing had happened.
import { afterEach, describe, expect, it } from 'vitest';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import { emptyRunView, reduceRunView } from '../../src/coordinator/run-view';
import type { ControlMessage } from '../../src/protocol/messages';
import type { CompressSpec } from '../../src/compress/spec';
import { compareToReference, reference, startSwarm, tinyRun, type Swarm } from './harness';
import { sabotagingBackend, type Sabotage, type SabotageLog } from './saboteur';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  for (const c of cleanups.splice(0)) c();
});

/** One 4-byte word short: a payload of an impossible length. */
const truncate = (p: Uint8Array) => p.slice(0, p.byteLength - 4);
/** One word too many. */
const extend = (p: Uint8Array) => {
  const q = new Uint8Array(p.byteLength + 4);
  q.set(p);
  return q;
};

/** Block 0's scale (the first body word, after the 16-byte header) set to f32 `value`'s bits. */
const scale0 = (value: number) => (p: Uint8Array) => {
  const q = p.slice();
  new DataView(q.buffer).setFloat32(16, value, true);
  return q;
};

describe('a corrupt activation or gradient payload', () => {
  it('is dropped and its sender reported; the step re-runs and the run still ends on the reference weights (fp32, S=2)', async () => {
    const run = tinyRun('corrupt-fp32', 2, [
      [0, 1],
      [1, 2],
    ]);
    swarm = await startSwarm(run, 'corrupt-fp32', { minPeers: 2, stepTimeoutMs: 5000 });
    const reports: { from: string; peer: string; reason: string }[] = [];
    swarm.coordinator.events.on('peer-report', (r) => reports.push(r));
    const received: { from: string; msg: ControlMessage }[] = [];
    swarm.coordSig.on('control', (ev) => received.push(ev));
    const log: SabotageLog = { act: [], grad: [] };
    const saboteur = (plan: Sabotage) => ({ compute: async () => sabotagingBackend(await nodeRuntime({ quiet: true }), plan, log) });
    // s0 sends one activation payload a word short; s1 one input-gradient payload a word long.
    await swarm.addPeer('s0', 1000, saboteur({ direction: 'act', corrupt: truncate }));
    await swarm.addPeer('s1', 1000, saboteur({ direction: 'grad', corrupt: extend }));
    const steps = await swarm.coordinator.finished();
    expect(swarm.peers.map((p) => p.runtime?.stageIndex)).toEqual([0, 1]);
    expect(log.act).toHaveLength(1);
    expect(log.grad).toHaveLength(1);

    // Each receiver reported the other as the sender, naming the codec and the problem.
    expect(reports).toHaveLength(2);
    const bySender = new Map(reports.map((r) => [r.peer, r]));
    expect(bySender.get(swarm.idOf('s0'))).toMatchObject({ from: swarm.idOf('s1') });
    expect(bySender.get(swarm.idOf('s0'))?.reason).toMatch(
      /^act of microbatch \d+ of step 0:\d+: fp32 codec: raw payload of \d+ bytes, expected \d+/,
    );
    expect(bySender.get(swarm.idOf('s1'))).toMatchObject({ from: swarm.idOf('s0') });
    expect(bySender.get(swarm.idOf('s1'))?.reason).toMatch(
      /^grad of microbatch \d+ of step 0:\d+: fp32 codec: raw payload of \d+ bytes, expected \d+/,
    );
    // The run's events (the view the pages and the CLI render) show both reports.
    let view = emptyRunView();
    for (const { from, msg } of received) view = reduceRunView(view, { kind: 'control', from, msg });
    const ids = [swarm.idOf('s0'), swarm.idOf('s1')];
    expect(view.events.filter((e) => ids.some((id) => e.text.includes(`dropped what ${id} sent`)))).toHaveLength(2);

    // The lost microbatches re-ran with step 0; nothing else broke.
    expect(steps.map((r) => r.step)).toEqual([0, 1, 2]);
    expect(steps[0].attempts).toBeGreaterThan(1);
    expect(steps.slice(1).map((r) => r.attempts)).toEqual([1, 1]);
    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    const cmp = await compareToReference(swarm.peers, ref.params);
    for (let s = 0; s < run.steps; s++) expect(Math.abs(steps[s].loss - ref.losses[s])).toBeLessThan(1e-5 * Math.max(1, ref.losses[s]));
    expect(cmp.worst.score).toBeLessThan(1e-5);
  }, 120_000);

  it('with int8 codecs: a non-finite or negative block scale is refused the same way (S=2)', async () => {
    const compress: CompressSpec = {
      act: { kind: 'int8', block: 64, rounding: 'nearest' },
      grad: { kind: 'int8', block: 64, rounding: 'stochastic' },
      bottleneck: null,
      sync: { mode: 'per-step' },
    };
    const run = tinyRun('corrupt-int8', 2, [
      [0, 1],
      [1, 2],
    ]);
    const cRun = { ...run, compress };
    swarm = await startSwarm(cRun, 'corrupt-int8', { minPeers: 2, stepTimeoutMs: 5000 });
    const reports: { from: string; peer: string; reason: string }[] = [];
    swarm.coordinator.events.on('peer-report', (r) => reports.push(r));
    const log: SabotageLog = { act: [], grad: [] };
    const saboteur = (plan: Sabotage) => ({ compute: async () => sabotagingBackend(await nodeRuntime({ quiet: true }), plan, log) });
    await swarm.addPeer('t0', 1000, saboteur({ direction: 'act', corrupt: scale0(Number.NaN) }));
    await swarm.addPeer('t1', 1000, saboteur({ direction: 'grad', corrupt: scale0(-1) }));
    const steps = await swarm.coordinator.finished();
    expect(log.act).toHaveLength(1);
    expect(log.grad).toHaveLength(1);
    const bySender = new Map(reports.map((r) => [r.peer, r]));
    expect(reports).toHaveLength(2);
    expect(bySender.get(swarm.idOf('t0'))?.reason).toMatch(
      /^act of microbatch \d+ of step 0:\d+: int8 \(block 64, nearest\) codec: scale of block 0 is NaN \(not finite\)$/,
    );
    expect(bySender.get(swarm.idOf('t1'))?.reason).toMatch(
      /^grad of microbatch \d+ of step 0:\d+: int8 \(block 64, stochastic\) codec: scale of block 0 is negative \(-1\)$/,
    );
    expect(steps.map((r) => r.step)).toEqual([0, 1, 2]);
    expect(steps[0].attempts).toBeGreaterThan(1);
    const ref = await reference(cRun);
    cleanups.push(() => ref.rt.destroy());
    const cmp = await compareToReference(swarm.peers, ref.params);
    expect(cmp.worst.score).toBeLessThan(1e-5);
  }, 120_000);
});
