// The ledger over a real swarm (signaling server, WebRTC, GPU peers): every honest peer's credits equal its verified
// work — the forward and backward microbatches its stage runtime counted, times its stage's FLOPs per microbatch —
// each peer's last `credit` message says the same, and the signed export verifies against the coordinator's key.
import { afterEach, describe, expect, it } from 'vitest';
import { creditsOf } from '../../src/coordinator/ledger';
import { verifyLedger } from '../../src/coordinator/ledger-export';
import { LedgerKeeper } from '../../src/coordinator/ledger-keeper';
import { stageMicrobatchFlops } from '../../src/model/flops';
import type { ControlOf } from '../../src/protocol/messages';
import { startSwarm, tinyRun, type Swarm } from './harness';

let swarm: Swarm | undefined;
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
});

describe('contribution ledger over the swarm', () => {
  it('S=2 (stage 0 two replicas): credits = each peer forward/backward counters x its stage FLOPs', async () => {
    const run = tinyRun('ledger-s2', 4, [
      [0, 2],
      [2, 4],
    ]);
    swarm = await startSwarm(run, 'ledger-s2', { minPeers: 3 });
    const s = swarm;
    const exports: string[] = [];
    const keeper = new LedgerKeeper({
      events: s.coordinator.events,
      run,
      identity: s.coordSig.identity,
      keyOf: (id) => s.coordSig.keyOf(id),
      members: () => s.coordinator.members(),
      send: (msg, to) => s.coordSig.sendControl(msg, to),
      onExport: (t) => void exports.push(t),
    });
    let restarts = 0;
    s.coordinator.events.on('restart', () => restarts++);
    // Stage 0 (the heavier assignment goes first) gets two replicas; the faster peers are assigned first.
    for (const id of ['a', 'b', 'c']) await s.addPeer(id, 1000);
    const credits = new Map<string, ControlOf<'credit'>>();
    for (const p of s.peers) p.signaling.on('control', ({ msg }) => msg.type === 'credit' && credits.set(p.peerId, msg));
    const reports = await s.coordinator.finished();
    expect(reports.length).toBe(run.steps);
    expect(restarts).toBe(0);
    const last = await keeper.latest();
    if (last === null) throw new Error('no ledger export');
    const v = await verifyLedger(last, s.coordSig.identity.fingerprint);
    if (!v.ok) throw new Error(v.error);
    expect(v.ledger.step).toBe(run.steps);

    let total = 0n;
    for (const p of s.peers) {
      const rt = p.runtime;
      if (!rt) throw new Error(`${p.peerId} has no stage`);
      const f = stageMicrobatchFlops(run.model, run.stages[rt.stageIndex], run.B, run.T);
      const { forward, backward } = rt.counters;
      expect(forward).toBeGreaterThan(0);
      const e = keeper.ledger.get(p.peerId);
      if (!e) throw new Error(`${p.peerId} is not in the ledger`);
      expect({ forward: e.forwardMicrobatches, backward: e.backwardMicrobatches }).toEqual({ forward, backward });
      expect(creditsOf(e)).toBe(BigInt(forward) * f.forward + BigInt(backward) * f.backward);
      expect(e.publicKey).toBe(s.coordSig.keyOf(p.peerId));
      const row = v.ledger.entries.find((x) => x.id === p.peerId);
      expect(row?.credits).toBe(creditsOf(e).toString());
      total += creditsOf(e);
      // The peer heard its credits after the last step (the coordinator sends them before the run's shutdown).
      await expect.poll(() => credits.get(p.peerId)?.credits).toBe(Number(creditsOf(e)));
    }
    // Every microbatch was computed once per stage: M x steps forwards per stage.
    expect(v.ledger.totals.credits).toBe(total.toString());
    expect(total).toBe(
      BigInt(run.M * run.steps) *
        run.stages.reduce((a, r) => {
          const f = stageMicrobatchFlops(run.model, r, run.B, run.T);
          return a + f.forward + f.backward;
        }, 0n),
    );
    keeper.close();
  }, 120_000);
});
