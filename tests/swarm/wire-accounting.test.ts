// Wire accounting in a real swarm (S=2 x R=2 Node peers over WebRTC, bottleneck 8 + int8 on the wire): every byte
// a peer sends lands in a category (nothing in `other`), the step-done reports add up to what the transports
// counted, and the pipeline's bytes are the codecs' exact payloads plus framing. Also the time accounting: every step
// reports each stage's compute, codec, send, sync and wait (src/protocol/stage-time.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { payloadBytes } from '../../src/compress/codec';
import { emptyRunView, reduceRunView, stageTimes, type RunView } from '../../src/coordinator/run-view';
import type { StepReport } from '../../src/coordinator/step-report';
import { parseCompressOption } from '../../src/coordinator/compress-option';
import { addWireBytes, emptyWireBytes, wireBytesOf } from '../../src/protocol/wire-categories';
import { startSwarm, tinyRun, type Swarm } from './harness';

describe('wire accounting in a swarm', () => {
  let swarm: Swarm | undefined;
  afterEach(async () => {
    await swarm?.close();
    swarm = undefined;
  });

  it("counts every byte in a category; step-done totals match the transports; payloads are the codecs' sizes", async () => {
    const compress = parseCompressOption('bottleneck=8p,pipe=int8:16');
    const run = tinyRun(
      'wire-acct',
      2,
      [
        [0, 1],
        [1, 2],
      ],
      { steps: 2, compress },
    );
    swarm = await startSwarm(run, 'wire-acct', { minPeers: 4 });
    let view: RunView = reduceRunView(emptyRunView(), { kind: 'started', run });
    swarm.coordSig.on('control', ({ from, msg }) => (view = reduceRunView(view, { kind: 'control', from, msg })));
    const reports: StepReport[] = [];
    swarm.coordinator.events.on('step', (report) => {
      reports.push(report);
      view = reduceRunView(view, { kind: 'step', report });
    });
    for (const id of ['a', 'b', 'c', 'd']) await swarm.addPeer(id, 1000);
    await swarm.coordinator.finished();

    let counted = emptyWireBytes();
    for (const p of swarm.peers) counted = addWireBytes(counted, wireBytesOf(p.wire.snapshot()));
    expect(counted.other).toBe(0);
    expect(view.wire.other).toBe(0);
    // Nothing crosses a stage boundary after a step's step-done: the reports hold every pipeline and sync byte.
    expect(view.wire.activations).toBe(counted.activations);
    expect(view.wire.activation_grads).toBe(counted.activation_grads);
    expect(view.wire.sync).toBe(counted.sync);
    expect(view.wire.control).toBeGreaterThan(0);
    expect(view.tokens).toBe(run.steps * run.M * run.B * run.T);

    // Per microbatch and boundary: one int8 payload of B*T*8 values forward (the last stage samples the targets itself),
    // one payload backward.
    const n = run.B * run.T * 8;
    const micro = run.steps * run.M;
    const act = micro * payloadBytes(compress.act, n);
    const grad = micro * payloadBytes(compress.grad, n);
    // Framing: a 36-byte chunk header and a JSON descriptor (< 600 bytes here) per tensor (act, grad).
    expect(view.wire.activations).toBeGreaterThan(act);
    expect(view.wire.activations - act).toBeLessThan(micro * 636);
    expect(view.wire.activation_grads).toBeGreaterThan(grad);
    expect(view.wire.activation_grads - grad).toBeLessThan(micro * 636);

    // Time accounting: every step reports where each stage's time went, from both replicas.
    for (const r of reports) {
      expect(r.time).toHaveLength(2);
      for (const t of r.time ?? []) {
        if (!t) throw new Error(`step ${r.step}: a stage reported no time`);
        // A peer's attempt lies inside the coordinator's step (begin sent before, step-done received after).
        expect(t.wall).toBeGreaterThan(0);
        expect(t.wall).toBeLessThanOrEqual(r.ms + 1);
        // Every stage computed, ran an int8 codec on the host (decode at least), signed and sent payloads, and reduced
        // with its twin through the coordinator.
        for (const k of ['compute', 'codec', 'send', 'sync'] as const) expect(t[k], `step ${r.step} ${k}`).toBeGreaterThan(0);
        // The parts cover the wall time (wait is the rest, never negative).
        expect(t.compute + t.codec + t.send + t.sync + t.wait).toBeGreaterThanOrEqual(t.wall - 1e-6);
      }
    }
    const times = stageTimes(view);
    expect(times).toHaveLength(2);
    for (const t of times) expect(t?.compute).toBeGreaterThan(0);
  }, 120_000);
});
