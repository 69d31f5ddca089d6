// The simulator in local-steps (DiLoCo) sync mode: the real coordinator runs lanes, per-lane clip scales and an
// outer sync every H steps (sync-begin -> the replicas' all-gather of the sync codec's payloads -> sync-done), and
// the same swarm in per-step mode (a butterfly all-reduce of every step's fp32 gradient) puts many times the bytes on
// each peer's uplink per step. Node only, no GPU.
import { describe, expect, it } from 'vitest';
import { drawProfiles, microbatchCost } from '../../src/sim/peer-profiles';
import { Rng } from '../../src/sim/rng';
import { defaultMicrobatches, DEFAULT_MODEL } from '../../src/sim/scenario';
import { runSimulation, simRun } from '../../src/sim/simulator';
import type { Scenario } from '../../src/sim/types';

const H = 8;
const PIPE = 'pipe=int4:64,bottleneck=8p';
const base: Scenario = {
  peers: 24,
  stages: 2,
  churnPerHour: 0,
  adversaries: 0.1,
  compress: `${PIPE},sync=local:H=${H}:int4`,
  hours: 3 / 60,
  seed: 3,
  model: DEFAULT_MODEL,
  B: 12,
  M: defaultMicrobatches(24, 2),
};

const simulate = (sc: Scenario) => runSimulation({ scenario: sc, profiles: drawProfiles(sc, new Rng(sc.seed)), cost: microbatchCost(sc) });

describe('local-steps sync in the simulator', () => {
  it('the coordinator is given the scenario compress spec (local sync), none left out as the run builder does', () => {
    expect(simRun(base).compress?.sync).toMatchObject({ mode: 'local', H, codec: { kind: 'int4' } });
    expect(simRun({ ...base, compress: 'none' }).compress).toBeUndefined();
  });

  it('24 peers, 2 stages, H=8: outer syncs agree, no bad step, no honest strike, far fewer bytes than per-step', async () => {
    const local = await simulate(base);
    const inv = local.invariants;
    expect(inv.coordinatorError).toBeUndefined();
    expect(local.summary.steps).toBeGreaterThan(2 * H);
    expect(inv.syncsDisagreeing).toBe(0);
    expect(inv.lanesAlike).toBe(0);
    expect(inv.badSteps).toEqual([]);
    expect(inv.refused).toEqual({});
    expect(inv.honestStrikes).toEqual({});
    expect(inv.evictedAllAdversaries).toBe(true);
    expect(local.summary.evicted_honest).toBe(0);
    const again = await simulate(base);
    const { coordinator_cpu_ms_per_step: _a, ...sa } = local.summary;
    const { coordinator_cpu_ms_per_step: _b, ...sb } = again.summary;
    expect(sb).toEqual(sa);

    const perStep = await simulate({ ...base, compress: `${PIPE},sync=per-step` });
    expect(perStep.invariants.badSteps).toEqual([]);
    expect(perStep.summary.steps).toBeGreaterThan(0);
    const ratio = perStep.summary.bytes_per_peer_per_step / local.summary.bytes_per_peer_per_step;
    console.log(JSON.stringify({ local: local.summary, perStep: perStep.summary, ratio, inv }));
    expect(ratio).toBeGreaterThan(6);
  }, 60_000);
});
