// Signed control and the coordinator's authorization over the real signaling server, real WebRTC and real GPU
// compute (2 stages x 1 replica). Two attackers in the room:
//  - a member of the room (its own key) that forges reports to the coordinator: mb-done / mb-loss (loss 0.001) for
//    every microbatch of every step, a step-apply: refused by authorize.ts, the run's losses are the honest ones;
//  - forged coordinator messages that reach a training peer (as a compromised relay would deliver them): an unsigned
//    step-apply with lr 100, a step-apply / swarm-assign / shutdown signed by another key in the coordinator's name,
//    the coordinator's own earlier messages replayed and reordered, the member's own signed messages (an envelope
//    whose type differs from its body: src/protocol/signed-control.test.ts). The peer obeys none of them: every one is dropped (counted by reason), the run ends with
//    the single-peer engine's losses and the peer's shutdown is the coordinator's.
// (The forge-reports adversary of tests/swarm/attacks.test.ts covers a forging *training* member.)
import { afterEach, expect, it } from 'vitest';
import { nodeWebSocket } from '../../src/net/rtc-node';
import { SignalingClient } from '../../src/net/signaling-client';
import { connectSwarm, swarmControl } from '../../src/protocol/control-codec';
import type { ControlMessage } from '../../src/protocol/messages';
import { signControl, type SignedEnvelope } from '../../src/protocol/signed-control';
import { testIdentity } from '../support/identity';
import { reference, startSwarm, tinyRun, type Swarm } from './harness';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await swarm?.close();
  swarm = undefined;
});

/** What the server would relay to `client`: fed through the client's whole pipeline (bounds, schema, codec, SignedControl). */
function relay(client: SignalingClient<SignedEnvelope>, from: string, msg: unknown): void {
  const ws = client['ws'];
  ws.onmessage?.({ data: JSON.stringify({ type: 'control', from, msg }) });
}

it('forged reports are refused and forged coordinator messages never obeyed; the run is the honest one', async () => {
  const run = tinyRun('trust-control', 2, [
    [0, 1],
    [1, 2],
  ]);
  const s = await startSwarm(run, run.runId, { minPeers: 2 });
  swarm = s;
  const scope = { coordinatorFingerprint: s.coordSig.coordinatorFingerprint, room: run.runId };
  const coordId = s.coordSig.peerId;

  // The forging member: signs with its own key, hears the room's broadcasts.
  const forger = await connectSwarm(s.server.url, {
    room: run.runId,
    role: 'peer',
    coordinator: scope.coordinatorFingerprint,
    identity: await testIdentity('trust-control/forger'),
    WebSocket: nodeWebSocket,
  });
  cleanups.push(() => forger.close());
  let forged = 0;
  forger.on('control', ({ msg }) => {
    if (msg.type !== 'step-begin') return;
    const { step, attempt } = msg;
    for (let mb = 0; mb < run.M; mb++) {
      forger.sendControl({ type: 'mb-done', step, attempt, mb });
      forger.sendControl({ type: 'mb-loss', step, attempt, mb, loss: 0.001 });
      forged += 2;
    }
    forger.sendControl({ type: 'step-apply', step, attempt, scale: 1, lr: 100 });
  });

  // A raw listener that keeps the coordinator's signed envelopes (to replay them).
  const spy = await SignalingClient.connect(s.server.url, {
    room: run.runId,
    role: 'peer',
    coordinator: scope.coordinatorFingerprint,
    identity: await testIdentity('trust-control/spy'),
    WebSocket: nodeWebSocket,
    control: swarmControl,
  });
  cleanups.push(() => spy.close());
  const captured: SignedEnvelope[] = [];
  spy.on('control', ({ from, msg }) => from === coordId && captured.push(msg));

  const p0 = await s.addPeer('p0', 1000);
  const p1 = await s.addPeer('p1', 1000);
  const victim = p1.signaling;
  const obeyed: ControlMessage[] = [];
  victim.on('control', ({ msg }) => obeyed.push(msg));

  const other = await testIdentity('trust-control/forger');
  let injected = false;
  spy.on('control', ({ msg }) => {
    if (injected || msg.type !== 'step-begin') return;
    const begin = JSON.parse(msg.body) as ControlMessage;
    if (begin.type !== 'step-begin' || begin.step !== 1) return;
    injected = true;
    void (async () => {
      const raw = victim.signaling;
      const lr100: ControlMessage = { type: 'step-apply', step: 1, attempt: begin.attempt, scale: 1, lr: 100 };
      // Unsigned (the old plain form).
      relay(raw, coordId, lr100);
      // Signed by another key in the coordinator's name: step-apply, swarm-assign, shutdown.
      const inName = { ...other, id: coordId };
      const seq = Date.now() * 1000 + 1e9;
      for (const [i, m] of [lr100, { type: 'swarm-assign', stage: 0, run }, { type: 'shutdown', reason: 'forged' }].entries())
        relay(raw, coordId, await signControl(inName, scope, seq + i, JSON.stringify(m), (m as ControlMessage).type));
      // The coordinator's own messages of step 0, replayed, then two of them in reverse order.
      const old = captured.filter((e) => e.type === 'step-apply');
      relay(raw, coordId, old[0]);
      relay(raw, coordId, captured[captured.length - 1]);
      relay(raw, coordId, captured[captured.length - 2]);
      // The member's own valid signature: not the coordinator's key.
      relay(raw, other.id, await signControl(other, scope, seq, JSON.stringify(lr100), 'step-apply'));
    })();
  });

  const reports = await s.coordinator.finished();
  const done = await p1.finished();
  expect(injected).toBe(true);
  expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
  expect(done.reason).toMatch(/complete/);
  // Nothing forged was delivered: every step-apply the peer obeyed is the coordinator's (lr from the schedule).
  const applies = obeyed.filter((m) => m.type === 'step-apply');
  expect(applies.map((m) => m.type === 'step-apply' && m.lr)).toEqual(reports.map((r) => r.lr));
  expect(obeyed.filter((m) => m.type === 'swarm-assign')).toHaveLength(1);
  expect(obeyed.filter((m) => m.type === 'shutdown')).toHaveLength(1);
  const drops = victim.drops;
  expect(drops.malformed).toBeGreaterThanOrEqual(1);
  expect(drops['bad-signature']).toBeGreaterThanOrEqual(3);
  expect(drops['stale-seq']).toBeGreaterThanOrEqual(2);
  expect(drops['not-coordinator']).toBeGreaterThanOrEqual(1);
  // The forger's reports were refused, not counted.
  expect(forged).toBeGreaterThan(0);
  const refused = s.coordinator.refusedReports.refused;
  for (const type of ['mb-done', 'mb-loss', 'step-apply']) expect(refused.get(type) ?? 0, type).toBeGreaterThan(0);
  const ref = await reference(run);
  ref.rt.destroy();
  for (let i = 0; i < run.steps; i++) expect(Math.abs(reports[i].loss - ref.losses[i])).toBeLessThan(1e-5 * Math.max(1, ref.losses[i]));
  expect(p0.state).toBe('finished');
}, 120_000);
