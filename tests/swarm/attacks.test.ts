// The attacks the acceptance run (byzantine.test.ts) does not cover, each performed by an adversary peer
// (src/swarm/adversary.ts) over the real signaling server, real WebRTC and real GPU compute, and each detected or
// refused (docs/trust.md "Adversaries"):
//   signflip, stale       -> a validator recomputes the contribution: struck, evicted (1 x 3, trimmed mean)
//   bad-activations       -> a first-stage replica's activations are valid payloads of wrong values: its validation
//                            fails, it is evicted (2 stages x 3 replicas, fp32 and int8 boundaries)
//   forge-reports         -> mb-done for others' microbatches, mb-loss from a first-stage peer, grad-sumsq for another
//                            stage: refused by the coordinator's authorization; the run's losses are the honest ones
// In every case no honest peer is struck, the run finishes, and the honest replicas of a stage stay bitwise identical.
import { afterEach, describe, expect, it } from 'vitest';
import type { CoordinatorEvents } from '../../src/coordinator/coordinator';
import type { CompressSpec } from '../../src/compress/spec';
import type { RunConfig, TrustSpec } from '../../src/protocol/run-config';
import { emptyAttackLog, parseAttack, type AttackLog, type AttackSpec } from '../../src/swarm/adversary';
import type { SwarmPeer } from '../../src/swarm/peer';
import { reference, replicasIdentical, startSwarm, tinyRun, type Swarm } from './harness';

let swarm: Swarm | undefined;
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
});

interface Outcome {
  swarm: Swarm;
  losses: number[];
  strikes: CoordinatorEvents['strike'][];
  evicted: CoordinatorEvents['evicted'][];
  honest: SwarmPeer[];
  bad: string;
  log: AttackLog;
}

/** `ids` join in order (stage assignment follows it); `badAt` is the adversary's index. */
async function attackRun(run: RunConfig, ids: string[], badAt: number, attack: AttackSpec): Promise<Outcome> {
  const s = await startSwarm(run, run.runId, { minPeers: ids.length });
  swarm = s;
  const strikes: Outcome['strikes'] = [];
  const evicted: Outcome['evicted'] = [];
  s.coordinator.events.on('strike', (e) => strikes.push(e));
  s.coordinator.events.on('evicted', (e) => evicted.push(e));
  const log = emptyAttackLog();
  const honest: SwarmPeer[] = [];
  let bad = '';
  for (const [i, id] of ids.entries()) {
    const p = await s.addPeer(id, 1000, i === badAt ? { attack, attackLog: log } : {});
    if (i === badAt) bad = p.peerId;
    else honest.push(p);
  }
  const reports = await s.coordinator.finished();
  expect(reports.map((r) => r.step)).toEqual([...Array(run.steps).keys()]);
  return { swarm: s, losses: reports.map((r) => r.loss), strikes, evicted, honest, bad, log };
}

const VALIDATED: TrustSpec = { aggregation: 'trimmed-mean', validationRate: 1, strikes: 1 };

function expectCaught(o: Outcome, reason: RegExp): void {
  expect(o.strikes.length).toBeGreaterThan(0);
  expect(o.strikes.filter((s) => s.peerId !== o.bad)).toEqual([]);
  expect(o.strikes[0].reason).toMatch(reason);
  expect(o.evicted.map((e) => e.peerId)).toEqual([o.bad]);
}

async function expectHonestIdentical(o: Outcome, perStage: number): Promise<void> {
  const byStage = new Map<number, SwarmPeer[]>();
  for (const p of o.honest) byStage.set(p.runtime!.stageIndex, [...(byStage.get(p.runtime!.stageIndex) ?? []), p]);
  for (const ps of byStage.values()) {
    expect(ps.length).toBeLessThanOrEqual(perStage);
    for (let i = 1; i < ps.length; i++) expect(await replicasIdentical(ps[0], ps[i])).toBe(true);
  }
}

describe('attacks detected or refused', () => {
  for (const mode of ['signflip', 'stale'])
    it(`${mode} (1 stage x 3): a validation finds the contribution wrong, the adversary is evicted`, async () => {
      const run = tinyRun(`atk-${mode}`, 1, [[0, 1]], { M: 6, steps: 3, trust: VALIDATED });
      const o = await attackRun(run, ['a0', 'a1', 'a2'], 2, parseAttack(mode));
      expect(o.log.gradients).toBeGreaterThan(0);
      expectCaught(o, /validation/);
      // stale has nothing older to send at step 0 (its own contribution is honest there; a replay it runs as a
      // validator may not be): caught by step 1; signflip at step 0.
      expect(o.evicted[0].step).toBeLessThanOrEqual(mode === 'stale' ? 1 : 0);
      await expectHonestIdentical(o, 2);
      const ref = await reference(run);
      ref.rt.destroy();
      for (let s = 0; s < run.steps; s++) expect(Math.abs(o.losses[s] - ref.losses[s]) / ref.losses[s]).toBeLessThan(0.01);
    }, 180_000);

  const int8: CompressSpec = {
    act: { kind: 'int8', block: 64, rounding: 'nearest' },
    grad: { kind: 'int8', block: 64, rounding: 'nearest' },
    bottleneck: null,
    sync: { mode: 'per-step' },
  };
  for (const [name, compress] of [
    ['fp32', undefined],
    ['int8', int8],
  ] as const)
    it(`bad-activations (2 stages x 3, ${name} boundary): valid payloads of wrong values are caught by validation`, async () => {
      const base = tinyRun(`atk-acts-${name}`, 2, [
        [0, 1],
        [1, 2],
      ]);
      const run: RunConfig = { ...base, M: 6, trust: { aggregation: 'sum', validationRate: 1, strikes: 1 }, ...(compress ? { compress } : {}) };
      // Equal throughputs join s0, s1, s0, s1, s0, s1: the adversary (index 4) is a first-stage replica. Three per
      // stage: with two, a failed validation cannot tell the liar from its validator (both are struck).
      const o = await attackRun(run, ['b0', 'b1', 'b2', 'b3', 'b4', 'b5'], 4, parseAttack('bad-activations'));
      expect(o.log.activations).toBeGreaterThan(0);
      expectCaught(o, /validation|trace|digest/);
      await expectHonestIdentical(o, 3);
    }, 180_000);

  it('forge-reports (2 stages x 2): forged mb-done, mb-loss and grad-sumsq are refused; the losses are the honest ones', async () => {
    const base = tinyRun('atk-forge', 2, [
      [0, 1],
      [1, 2],
    ]);
    const run: RunConfig = { ...base, trust: { aggregation: 'sum', validationRate: 0, strikes: 3 } };
    const o = await attackRun(run, ['f0', 'f1', 'f2', 'f3'], 2, parseAttack('forge-reports'));
    expect(o.log.forged).toBeGreaterThan(0);
    const refused = o.swarm.coordinator.refusedReports.refused;
    // A first-stage forger: its mb-done for microbatches it does not own, every mb-loss, and grad-sumsq for stage 1.
    for (const type of ['mb-done', 'mb-loss', 'grad-sumsq']) expect(refused.get(type) ?? 0, type).toBeGreaterThan(0);
    expect(o.strikes.filter((s) => s.peerId !== o.bad)).toEqual([]);
    // The coordinator's losses are the honest run's (the forged 0.001 never counted; nor a reduce started early).
    const ref = await reference(run);
    ref.rt.destroy();
    for (let s = 0; s < run.steps; s++) expect(Math.abs(o.losses[s] - ref.losses[s])).toBeLessThan(1e-5 * Math.max(1, ref.losses[s]));
    await expectHonestIdentical(o, 2);
  }, 180_000);
});
