// Robust aggregation over the real server, real WebRTC and real GPU compute (docs/trust.md "Robust aggregation"):
// a replica whose gradients are NaN is excluded by its twins, struck and evicted, and NaN never reaches the honest
// weights; a replica that scales its gradient by -1000 is excluded and the run trains as the honest one; with every
// replica honest, the robust aggregate is the sum within float rounding; a replica that lies about the digests it
// received (frame-robust) is struck itself, never the senders it tries to frame (their vectors are signed).
import { afterEach, describe, expect, it } from 'vitest';
import type { RunConfig, TrustSpec } from '../../src/protocol/run-config';
import type { StepReport } from '../../src/coordinator/coordinator';
import type { AttackSpec } from '../../src/swarm/adversary';
import type { SwarmPeer } from '../../src/swarm/peer';
import { reference, replicasIdentical, startSwarm, tinyRun, type Swarm } from './harness';
import { testIdentity } from '../support/identity';
import type { Transport } from '../../src/net/transport';
import { ROBUST_KIND } from '../../src/swarm/robust-reduce';
import { readRobustMeta, robustMeta } from '../../src/protocol/tensors';
import { robustSigningText } from '../../src/protocol/digest-signing';
import { digestVector } from '../../src/swarm/step-trace';

let swarm: Swarm | undefined;
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
});

/** 1 stage x 3 replicas; M = 6 so every replica owns 2 microbatches (equal counts: robust mean x M = the sum). */
function run3(runId: string, trust: TrustSpec | undefined, steps: number): RunConfig {
  return tinyRun(runId, 2, [[0, 2]], { M: 6, steps, ...(trust ? { trust } : {}) });
}

const TRIMMED: TrustSpec = { aggregation: 'trimmed-mean', validationRate: 0, strikes: 2 };

interface Outcome {
  reports: StepReport[];
  peers: SwarmPeer[];
  strikes: { peerId: string; reason: string }[];
  evicted: string[];
}

/** `tweak`: a test-only change to the third peer, made right after it joined (its links come later). */
async function train(run: RunConfig, attack?: AttackSpec, tweak?: (x: SwarmPeer, honest: SwarmPeer[]) => void): Promise<Outcome> {
  swarm = await startSwarm(run, run.runId, { minPeers: 3 });
  const strikes: Outcome['strikes'] = [];
  const evicted: string[] = [];
  swarm.coordinator.events.on('strike', (s) => strikes.push(s));
  swarm.coordinator.events.on('evicted', (e) => evicted.push(e.peerId));
  const h0 = await swarm.addPeer('h0', 1000);
  const h1 = await swarm.addPeer('h1', 1000);
  const x2 = await swarm.addPeer('x2', 1000, attack ? { attack } : {});
  tweak?.(x2, [h0, h1]);
  const reports = await swarm.coordinator.finished();
  return { reports, peers: [...swarm.peers], strikes, evicted };
}

async function finiteParams(p: SwarmPeer): Promise<boolean> {
  const x = await p.runtime!.stage.params.readFlat('params');
  return x.every((v) => Number.isFinite(v));
}

describe('robust aggregation over WebRTC', () => {
  it('a NaN replica: excluded, struck, evicted; the honest replicas stay finite and bitwise identical', async () => {
    const out = await train(run3('robust-nan', TRIMMED, 4), { mode: 'nan' });
    const [h0, h1, bad] = out.peers;
    expect(out.evicted).toEqual([bad.peerId]);
    expect(out.strikes.length).toBeGreaterThanOrEqual(TRIMMED.strikes);
    expect(out.strikes.every((s) => s.peerId === bad.peerId)).toBe(true);
    expect(out.strikes[0].reason).toMatch(/non-finite/);
    expect(out.reports.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    for (const r of out.reports) {
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(r.scale).toBeGreaterThan(0);
    }
    // After the eviction the step re-ran without it, and the later steps ran on the two honest replicas.
    expect(out.reports[TRIMMED.strikes - 1].attempts).toBeGreaterThan(1);
    expect(out.reports[3].members[0].sort()).toEqual([h0.peerId, h1.peerId].sort());
    expect(await finiteParams(h0)).toBe(true);
    expect(await replicasIdentical(h0, h1)).toBe(true);
  }, 240_000);

  it('a replica that reports wrong digests for the others (frame-robust): only it is struck and evicted', async () => {
    const out = await train(run3('robust-frame', TRIMMED, 4), { mode: 'frame-robust' });
    const [h0, h1, liar] = out.peers;
    expect(out.evicted).toEqual([liar.peerId]);
    expect(out.strikes.length).toBe(TRIMMED.strikes);
    for (const s of out.strikes) {
      expect(s.peerId).toBe(liar.peerId);
      expect(s.reason).toMatch(/without its valid signature/);
    }
    expect(out.reports.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    expect(out.reports[3].members[0].sort()).toEqual([h0.peerId, h1.peerId].sort());
    expect(await replicasIdentical(h0, h1)).toBe(true);
  }, 240_000);

  it('an equivocator (validly signed different vectors to its two twins): it alone is struck and evicted', async () => {
    const run = run3('robust-equivocate', TRIMMED, 4);
    const signer = await testIdentity(`${run.runId}/x2`);
    let equivocated = 0;
    // Test-only wrapper: on its link to h1, x2's robust-grad vector is nudged, its digest re-computed and signed.
    const tweak = (x: SwarmPeer, [, h1]: SwarmPeer[]) => {
      const patched = new WeakSet<Transport>();
      const get = x.links.get.bind(x.links);
      x.links.get = (peerId: string) => {
        const t = get(peerId);
        if (t && peerId === h1.peerId && !patched.has(t)) {
          patched.add(t);
          const send = t.sendTensor.bind(t);
          t.sendTensor = async (o) => {
            const m = o.kind === ROBUST_KIND && o.meta ? readRobustMeta(o.meta) : null;
            if (!m?.ok || !(o.data instanceof Float32Array)) return send(o);
            const data = o.data.slice();
            data[0] += 1e-3;
            const digest = await digestVector(data);
            const sig = await signer.sign(robustSigningText({ runId: run.runId, ...m.value }, digest));
            equivocated++;
            return send({ ...o, data, meta: robustMeta({ ...m.value, digest, sig }) });
          };
        }
        return t;
      };
    };
    const out = await train(run, undefined, tweak);
    const [h0, h1, x] = out.peers;
    expect(equivocated).toBeGreaterThanOrEqual(TRIMMED.strikes);
    expect(out.evicted).toEqual([x.peerId]);
    for (const s of out.strikes) {
      expect(s.peerId).toBe(x.peerId);
      expect(s.reason).toMatch(/signed different vectors/);
    }
    expect(out.reports.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    expect(await replicasIdentical(h0, h1)).toBe(true);
  }, 240_000);

  it("sum aggregation: a NaN replica's steps are skipped, the weights and AdamW moments untouched", async () => {
    const run = run3('sum-nan', undefined, 2);
    const out = await train(run, { mode: 'nan' });
    const [h0, h1] = out.peers;
    for (const r of out.reports) expect(r.scale).toBe(0);
    const init = await reference(run, 0);
    try {
      const got = await h0.runtime!.stage.params.read('params');
      for (const [name, v] of got)
        expect(Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.byteLength), Buffer.from(init.params.get(name)!.buffer))).toBe(0);
    } finally {
      init.rt.destroy();
    }
    for (const which of ['m', 'v'] as const) expect((await h0.runtime!.stage.params.readFlat(which)).every((x) => x === 0)).toBe(true);
    expect(await replicasIdentical(h0, h1)).toBe(true);
  }, 240_000);

  it('a replica that sends its gradient x -1000: excluded by norm, the run ends within a few % of the honest run', async () => {
    const steps = 8;
    const honest = await train(run3('robust-honest', { ...TRIMMED, strikes: 100 }, steps));
    await swarm?.close();
    swarm = undefined;
    const attacked = await train(run3('robust-scaled', { ...TRIMMED, strikes: 100 }, steps), { mode: 'scale', factor: -1000 });
    const bad = attacked.peers[2].peerId;
    expect(attacked.strikes.length).toBe(steps);
    expect(attacked.strikes.every((s) => s.peerId === bad && /norm/.test(s.reason))).toBe(true);
    const last = (o: Outcome) => o.reports[steps - 1].loss;
    const rel = Math.abs(last(attacked) - last(honest)) / last(honest);
    console.log(
      `[robust] x-1000 replica: final loss ${last(attacked).toFixed(4)} vs honest ${last(honest).toFixed(4)} (${(100 * rel).toFixed(2)} %)`,
    );
    expect(rel).toBeLessThan(0.03);
    expect(last(honest)).toBeLessThan(honest.reports[0].loss); // it trained
    expect(await replicasIdentical(attacked.peers[0], attacked.peers[1])).toBe(true);
  }, 240_000);

  for (const aggregation of ['trimmed-mean', 'centered-clip'] as const)
    it(`all honest, ${aggregation}: the same training as the sum all-reduce within float rounding`, async () => {
      const steps = 4;
      const sum = await train(run3(`sum-${aggregation}`, undefined, steps));
      const sumParams = await sum.peers[0].runtime!.stage.params.readFlat('params');
      await swarm?.close();
      swarm = undefined;
      const rob = await train(run3(`honest-${aggregation}`, { ...TRIMMED, aggregation }, steps));
      expect(rob.strikes).toEqual([]);
      let worstLoss = 0;
      for (let s = 0; s < steps; s++) worstLoss = Math.max(worstLoss, Math.abs(rob.reports[s].loss - sum.reports[s].loss));
      const robParams = await rob.peers[0].runtime!.stage.params.readFlat('params');
      let worstParam = 0;
      for (let i = 0; i < robParams.length; i++) worstParam = Math.max(worstParam, Math.abs(robParams[i] - sumParams[i]));
      console.log(
        `[robust] ${aggregation} vs sum, ${steps} steps: max |loss diff| ${worstLoss.toExponential(2)}, max |param diff| ${worstParam.toExponential(2)}`,
      );
      expect(worstLoss).toBeLessThan(1e-4);
      expect(worstParam).toBeLessThan(1e-4);
      expect(await replicasIdentical(rob.peers[0], rob.peers[1])).toBe(true);
      expect(await replicasIdentical(rob.peers[0], rob.peers[2])).toBe(true);
    }, 240_000);
});
