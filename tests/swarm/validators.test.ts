// Validators that recompute (docs/trust.md "Validators"): real GPU, real signaling server, real WebRTC. Every
// contribution is validated (validationRate 1): an honest run has only ok validations and ends on the same weights,
// bit for bit, as the run without validation; a replica that lies about its gradient, or one that corrupts a payload
// it sends, is found out by a validation, struck, and the step re-runs (without it, once evicted).
import { afterEach, describe, expect, it } from 'vitest';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import type { Runtime } from '../../src/gpu/runtime';
import type { CoordinatorEvents } from '../../src/coordinator/coordinator';
import type { RunConfig, TrustSpec } from '../../src/protocol/run-config';
import { DelegatingCompute, LocalComputeBackend, wrapStages, type ComputeBackend, type FlatWhich } from '../../src/model/stage-compute';
import { compareToReference, reference, replicasIdentical, startSwarm, tinyRun, whenAssigned, type Swarm } from './harness';
import { sabotagingBackend, type SabotageLog } from './saboteur';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  for (const c of cleanups.splice(0)) c();
});

const trust = (validationRate: number, strikes = 3): TrustSpec => ({ aggregation: 'sum', validationRate, strikes });

interface Recorded {
  validations: CoordinatorEvents['validation'][];
  strikes: CoordinatorEvents['strike'][];
  evicted: CoordinatorEvents['evicted'][];
  work: CoordinatorEvents['work'][];
}

function record(s: Swarm): Recorded {
  const r: Recorded = { validations: [], strikes: [], evicted: [], work: [] };
  s.coordinator.events.on('validation', (e) => r.validations.push(e));
  s.coordinator.events.on('strike', (e) => r.strikes.push(e));
  s.coordinator.events.on('evicted', (e) => r.evicted.push(e));
  s.coordinator.events.on('work', (e) => r.work.push(e));
  return r;
}

/** A compute whose every read of its gradient buffer is negated: it contributes -g and claims it. */
class NegatedGradients extends DelegatingCompute {
  override async readFlat(which: FlatWhich): Promise<Float32Array> {
    const v = await this.inner.readFlat(which);
    return which === 'grads' ? v.map((x) => -x) : v;
  }
}

function lyingBackend(rt: Runtime): ComputeBackend {
  return wrapStages(new LocalComputeBackend(rt), (stage) => new NegatedGradients(stage));
}

/** Peer ids (derived from their keys) by the labels the test gave them. */
type Ids = Record<string, string>;

/** The real backend, announcing another adapter kind: its validations compare values within the tolerance. */
function otherKindBackend(rt: Runtime): ComputeBackend {
  const inner = new LocalComputeBackend(rt);
  return {
    get adapter() {
      const a = inner.adapter;
      return a ? { ...a, key: 'other-kind' } : null;
    },
    benchmark: (reps) => inner.benchmark(reps),
    createStage: (spec) => inner.createStage(spec),
    destroy: () => inner.destroy(),
  };
}

async function run1x3(
  run: RunConfig,
  room: string,
  liar?: string,
  otherKind?: string,
): Promise<{ swarm: Swarm; rec: Recorded; params: Map<string, Float32Array>[]; id: Ids }> {
  const s = await startSwarm(run, room, { minPeers: 3 });
  swarm = s;
  const rec = record(s);
  const id: Ids = {};
  for (const label of ['v0', 'v1', 'v2'])
    id[label] = (
      await s.addPeer(
        label,
        1000,
        label === liar
          ? { compute: async () => lyingBackend(await nodeRuntime({ quiet: true })) }
          : label === otherKind
            ? { compute: async () => otherKindBackend(await nodeRuntime({ quiet: true })) }
            : {},
      )
    ).peerId;
  await s.coordinator.finished();
  const params = await Promise.all(s.peers.map((p) => p.runtime!.stage.params.read('params')));
  return { swarm: s, rec, params, id };
}

function bitwiseEqual(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.byteLength), Buffer.from(w.buffer, w.byteOffset, w.byteLength)) !== 0)
      return false;
  }
  return true;
}

describe('validators', () => {
  it('1 stage x 3 replicas, every contribution validated: all ok, bitwise; the weights equal the run without validation', async () => {
    const base = tinyRun('val-honest', 1, [[0, 1]], { M: 6 });
    const a = await run1x3({ ...base, trust: trust(1) }, 'val-honest');
    const reports = a.swarm.coordinator.reports;
    expect(reports.map((r) => r.attempts)).toEqual([1, 1, 1]);
    expect(a.rec.strikes).toEqual([]);
    expect(a.rec.validations).toHaveLength(3 * base.steps);
    for (const v of a.rec.validations) expect(v).toMatchObject({ ok: true, maxAbsDiff: 0 });
    // Every worker of every step was validated by another replica.
    for (let step = 0; step < base.steps; step++) {
      const vs = a.rec.validations.filter((v) => v.step === step);
      expect(new Set(vs.map((v) => v.worker))).toEqual(new Set(Object.values(a.id)));
      for (const v of vs) expect(v.validator).not.toBe(v.worker);
    }
    // Work: each replica's 2 of 6 microbatches (owners k mod 3), and the validations it ran.
    expect(a.rec.work).toHaveLength(base.steps);
    for (const w of a.rec.work) {
      for (const e of w.entries) expect(e).toMatchObject({ forward: 2, backward: 2 });
      expect(w.entries.reduce((n, e) => n + e.validations, 0)).toBe(3);
      expect(w.entries.reduce((n, e) => n + (e.recomputed ?? 0), 0)).toBe(6);
    }
    await a.swarm.close();
    swarm = undefined;

    const b = await run1x3({ ...base, runId: 'val-none', trust: trust(0) }, 'val-none');
    expect(b.rec.validations).toEqual([]);
    for (let i = 0; i < 3; i++) expect(bitwiseEqual(a.params[i], b.params[i])).toBe(true);
  }, 180_000);

  it('a replica that lies about its gradient is found out by a validation, evicted (strikes 1), and the step re-runs without it', async () => {
    const run = tinyRun('val-liar', 1, [[0, 1]], { M: 6, trust: trust(1, 1) });
    const { swarm: s, rec, id } = await run1x3(run, 'val-liar', 'v1');
    const reports = s.coordinator.reports;
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
    // Found out at step 0 and evicted; no honest replica struck.
    expect(rec.strikes.length).toBeGreaterThan(0);
    for (const st of rec.strikes) expect(st.peerId).toBe(id.v1);
    expect(rec.strikes[0]).toMatchObject({ step: 0 });
    expect(rec.strikes[0].reason).toMatch(/validation/);
    expect(rec.evicted.map((e) => e.peerId)).toEqual([id.v1]);
    expect(rec.validations.some((v) => v.worker === id.v1 && !v.ok)).toBe(true);
    expect(reports[0].attempts).toBeGreaterThan(1);
    for (const r of reports) expect(r.members).toEqual([[id.v0, id.v2]]);
    const honest = s.peers.filter((p) => p.peerId !== id.v1);
    expect(await replicasIdentical(honest[0], honest[1])).toBe(true);
    // The re-run steps are the honest training: the single-peer engine's weights.
    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    const cmp = await compareToReference(honest, ref.params);
    expect(cmp.worst.score).toBeLessThan(1e-5);
  }, 180_000);

  it('across adapter kinds (values within the tolerance): honest work passes, a gradient liar is still found out', async () => {
    const run = tinyRun('val-kinds', 1, [[0, 1]], { M: 6, trust: trust(1, 1) });
    const { swarm: s, rec, id } = await run1x3(run, 'val-kinds', 'v1', 'v2');
    expect(s.coordinator.reports.map((r) => r.step)).toEqual([0, 1, 2]);
    for (const st of rec.strikes) expect(st.peerId).toBe(id.v1);
    expect(rec.evicted.map((e) => e.peerId)).toEqual([id.v1]);
    // After the eviction v0 (this kind) and v2 ("another" kind) validate each other by values.
    const cross = rec.validations.filter((v) => v.step > 0);
    expect(cross).toHaveLength(2 * (run.steps - 1));
    for (const v of cross) {
      expect(v.ok).toBe(true);
      expect(v.detail).toMatch(/across adapter kinds/);
      expect(v.maxAbsDiff).toBe(0); // the same GPU underneath
    }
    const honest = s.peers.filter((p) => p.peerId !== id.v1);
    expect(await replicasIdentical(honest[0], honest[1])).toBe(true);
  }, 180_000);

  it('2 stages x 2 replicas: a last-stage replica that corrupts a gradient payload it sends is struck by its validation', async () => {
    const run = tinyRun(
      'val-corrupt',
      2,
      [
        [0, 1],
        [1, 2],
      ],
      { trust: trust(1, 3) },
    );
    const s = await startSwarm(run, 'val-corrupt', { minPeers: 4 });
    swarm = s;
    const rec = record(s);
    const log: SabotageLog = { act: [], grad: [] };
    // Doubled values: a well-formed fp32 payload its receiver accepts (only a recomputation tells it is wrong).
    const double = (p: Uint8Array) => {
      const f = new Float32Array(p.slice().buffer);
      return new Uint8Array(f.map((x) => 2 * x).buffer);
    };
    await s.addPeer('c0', 1000);
    const c1 = (
      await s.addPeer('c1', 1000, {
        compute: async () => sabotagingBackend(await nodeRuntime({ quiet: true }), { direction: 'grad', corrupt: double }, log),
      })
    ).peerId;
    await s.addPeer('c2', 1000);
    await s.addPeer('c3', 1000);
    const reports = await s.coordinator.finished();
    expect(s.peers.map((p) => p.runtime?.stageIndex)).toEqual([0, 1, 0, 1]);
    expect(log.grad).toHaveLength(1);
    const failed = rec.validations.filter((v) => !v.ok);
    expect(failed.map((v) => v.worker)).toEqual([c1]);
    expect(rec.strikes.map((x) => x.peerId)).toContain(c1);
    expect(rec.evicted).toEqual([]);
    expect(reports[0].attempts).toBe(2);
    expect(reports.slice(1).map((r) => r.attempts)).toEqual([1, 1]);
    for (const r of reports) expect(r.replicasAgree).toBe(true);
    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    const cmp = await compareToReference(s.peers, ref.params);
    expect(cmp.worst.score).toBeLessThan(1e-5);
  }, 180_000);

  it('2 stages x 1 replica (no validator): a receiver whose trace names another digest than its neighbour signed is struck alone, and the step re-runs', async () => {
    const run = tinyRun('val-trace', 2, [
      [0, 1],
      [1, 2],
    ]);
    const s = await startSwarm(run, 'val-trace', { minPeers: 2 });
    swarm = s;
    const rec = record(s);
    const first = await s.addPeer('t0', 1000);
    const second = await s.addPeer('t1', 1000);
    // t1 claims, once, to have received other activations than t0 sent (it keeps t0's signature of the real ones: it
    // cannot sign for t0).
    const rt = await whenAssigned(second);
    const messages = rt.trace.messages.bind(rt.trace);
    let lied = false;
    rt.trace.messages = async (...args) => {
      const msgs = await messages(...args);
      const m = msgs[0];
      if (lied || !m || m.recv.length === 0) return msgs;
      lied = true;
      const [mb, from, , sig] = m.recv[0];
      return [{ ...m, recv: [[mb, from, 'f'.repeat(32), sig] as [number, string, string, string], ...m.recv.slice(1)] }, ...msgs.slice(1)];
    };
    const reports = await s.coordinator.finished();
    expect(lied).toBe(true);
    expect(rec.strikes.map((x) => x.peerId)).toEqual([second.peerId]);
    expect(rec.strikes[0].reason).toMatch(/trace disagreement.*the receiver has no valid signature/);
    expect(first.peerId).not.toBe(second.peerId);
    expect(rec.validations).toEqual([]);
    // The one step with the lie ran twice (t1 was patched once it was assigned, before its first step's trace).
    expect(reports.map((r) => r.attempts).sort()).toEqual([1, 1, 2]);
    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    expect((await compareToReference(s.peers, ref.params)).worst.score).toBeLessThan(1e-5);
  }, 180_000);
  it('2 stages x 1 replica: a sender whose own trace names another digest than the one it signed is struck alone', async () => {
    const run = tinyRun('val-trace-sender', 2, [
      [0, 1],
      [1, 2],
    ]);
    const s = await startSwarm(run, 'val-trace-sender', { minPeers: 2 });
    swarm = s;
    const rec = record(s);
    const first = await s.addPeer('t0', 1000);
    await s.addPeer('t1', 1000);
    // t0 claims, once, to have sent other activations than the ones it signed and sent.
    const rt = await whenAssigned(first);
    const messages = rt.trace.messages.bind(rt.trace);
    let lied = false;
    rt.trace.messages = async (...args) => {
      const msgs = await messages(...args);
      const m = msgs[0];
      if (lied || !m || m.sent.length === 0) return msgs;
      lied = true;
      const [mb, to] = m.sent[0];
      return [{ ...m, sent: [[mb, to, 'f'.repeat(32)] as [number, string, string], ...m.sent.slice(1)] }, ...msgs.slice(1)];
    };
    const reports = await s.coordinator.finished();
    expect(lied).toBe(true);
    expect(rec.strikes.map((x) => x.peerId)).toEqual([first.peerId]);
    expect(rec.strikes[0].reason).toMatch(/trace disagreement.*the sender signed what was received/);
    expect(reports.map((r) => r.attempts).sort()).toEqual([1, 1, 2]);
  }, 180_000);
});
