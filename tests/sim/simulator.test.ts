// The simulator's engine drives the real coordinator with 50 simulated peers (2 stages, churn, 10% adversaries) for
// a few virtual minutes: no microbatch lost or counted twice, only adversaries evicted, and the same seed gives the
// same summary. Node only, no GPU.
import { describe, expect, it } from 'vitest';
import { runSimulation } from '../../src/sim/simulator';
import type { MicrobatchCost, PeerProfile, Scenario } from '../../src/sim/types';
import { rng } from '../support/random';

// The test's own seeded profiles (mulberry32 from tests/support): a small fixed mix whose invariants are easy to
// reason about; the scenario's real profiles come from src/sim/peer-profiles.ts.

function profiles(sc: Scenario): PeerProfile[] {
  const r = rng(sc.seed);
  const hex = () => Array.from({ length: 32 }, () => Math.floor(r() * 16).toString(16)).join('');
  const adversaries = Math.round(sc.peers * sc.adversaries);
  const horizon = sc.hours * 3600;
  return Array.from({ length: sc.peers }, (_, i) => {
    const sessions: PeerProfile['sessions'] = [];
    // Honest peers churn (a reload returns in seconds, a departure never); adversaries stay to be caught.
    if (i >= adversaries && r() < (sc.churnPerHour * sc.hours) / 1) {
      const leaveAtS = 30 + r() * (horizon - 60);
      sessions.push({ leaveAtS, returnAfterS: r() < 0.5 ? 5 + r() * 10 : null });
    }
    return {
      id: hex(),
      tokensPerSec: 2000 + r() * 6000,
      upBytesPerSec: (5 + r() * 45) * 125_000,
      downBytesPerSec: (50 + r() * 250) * 125_000,
      rttMs: 10 + r() * 60,
      adversary: i < adversaries,
      joinAtS: i < 40 ? 0 : 20 + r() * 60,
      sessions,
    };
  });
}

const scenario: Scenario = {
  peers: 50,
  stages: 2,
  churnPerHour: 1.2, // with 5 virtual minutes: ~10% of the honest peers leave once
  adversaries: 0.1,
  compress: 'none',
  hours: 5 / 60,
  seed: 7,
  model: { n_layer: 4, n_embd: 128, n_head: 4, block_size: 64, vocab_size: 512 },
  B: 4,
  M: 16,
};
const cost: MicrobatchCost = { flopsPerLayer: 6 * 4 * 64 * 12 * 128 * 128, activationBytes: 4 * 64 * 128 * 4, gradBytes: 4 * 64 * 128 * 4 };

describe('runSimulation', () => {
  it('50 peers, churn, 10% adversaries: every step has all its microbatches once, only adversaries evicted, deterministic', async () => {
    const a = await runSimulation({ scenario, profiles: profiles(scenario), cost });
    expect(a.summary.steps).toBeGreaterThan(10);
    expect(a.invariants.badSteps).toEqual([]);
    expect(a.invariants.evictedAllAdversaries).toBe(true);
    expect(a.summary.evicted_honest).toBe(0);
    expect(a.summary.evicted_adversaries).toBeGreaterThan(0);
    expect(a.invariants.refused).toEqual({});
    expect(a.invariants.honestStrikes).toEqual({});
    const b = await runSimulation({ scenario, profiles: profiles(scenario), cost });
    const { coordinator_cpu_ms_per_step: _a, ...sa } = a.summary;
    const { coordinator_cpu_ms_per_step: _b, ...sb } = b.summary;
    expect(sb).toEqual(sa);
    console.log(JSON.stringify(a.summary), JSON.stringify(a.invariants));
  }, 120_000);
});
