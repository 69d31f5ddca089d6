// Data channels bound to the membership (src/swarm/tensor-policy.ts) over the real signaling server, real WebRTC and
// real GPU compute, 3 stages x 1 replica:
//  - the middle stage's member uses its real links to inject what it may not send: a tied-wte gradient (1e3 in every
//    value, the right step and attempt) and activations into the first stage, stage state into the first stage
//    (nobody's join source), an all-reduce shard into the last stage (not its replica). Each is refused at the
//    link and its sender reported (peer-report); the run's weights and losses are the single-peer engine's.
//  - a room member that is not in the membership dials a training peer: the link is refused.
import { afterEach, expect, it } from 'vitest';
import { ConnectError, PeerNetwork } from '../../src/net/peer-network';
import { nodeRtcFactory, nodeWebSocket } from '../../src/net/rtc-node';
import { SignalingClient } from '../../src/net/signaling-client';
import { allreduceMeta, microbatchMeta, tieMeta } from '../../src/protocol/tensors';
import { ALLREDUCE_KIND } from '../../src/swarm/allreduce';
import { STATE_KIND } from '../../src/swarm/state-transfer';
import { testIdentity } from '../support/identity';
import { compareToReference, reference, startSwarm, tinyRun, type Swarm } from './harness';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await swarm?.close();
  swarm = undefined;
});

it('tensors a member may not send are refused at the link, a non-member cannot link; training is unaffected', async () => {
  const run = tinyRun('trust-tensors', 3, [
    [0, 1],
    [1, 2],
    [2, 3],
  ]);
  const s = await startSwarm(run, run.runId, { minPeers: 3 });
  swarm = s;
  const reports: { from: string; peer: string; reason: string }[] = [];
  s.coordinator.events.on('peer-report', (r) => reports.push(r));
  const first = await s.addPeer('t0', 1000);
  const middle = await s.addPeer('t1', 1000);
  const last = await s.addPeer('t2', 1000);

  const wte = run.model.vocab_size * run.model.n_embd;
  let injected: Promise<unknown> | undefined;
  middle.signaling.on('control', ({ msg }) => {
    if (injected || msg.type !== 'step-reduce' || msg.step !== 1) return;
    const { step, attempt } = msg;
    const toFirst = middle.links.get(first.peerId);
    const toLast = middle.links.get(last.peerId);
    if (!toFirst || !toLast) throw new Error('the middle stage has no links to its neighbours');
    const garbage = new Float32Array(wte).fill(1e3);
    injected = Promise.all([
      toFirst.sendTensor({ kind: 'tie', dtype: 'f32', shape: [wte], data: garbage, meta: tieMeta({ step, attempt, mb: -1 }) }),
      toFirst.sendTensor({
        kind: 'act',
        dtype: 'u8',
        shape: [16],
        data: new Uint8Array(16),
        // Refused at the link (policy) before any signature check: the digest and signature need only their form.
        meta: microbatchMeta({ step, attempt, mb: 0, origin: first.peerId, route: first.peerId, digest: '0'.repeat(32), sig: 'A'.repeat(86) }),
      }),
      toFirst.sendTensor({ kind: STATE_KIND, dtype: 'f32', shape: [4], data: new Float32Array(4), meta: { xfer: 'x', part: 'params' } }),
      toLast.sendTensor({
        kind: ALLREDUCE_KIND,
        dtype: 'f32',
        shape: [4],
        data: new Float32Array(4).fill(1e3),
        meta: allreduceMeta({ tag: `${run.runId}:${step}:${attempt}:s2`, phase: 'scatter', shard: 0, from: 0, size: 4, n: 4 }),
      }),
    ]);
  });

  // A member of the room that the coordinator never put in the membership dials the first stage.
  const strangerSig = await SignalingClient.connect(s.server.url, {
    room: run.runId,
    role: 'peer',
    coordinator: s.coordSig.coordinatorFingerprint,
    identity: await testIdentity('trust-tensors/stranger'),
    WebSocket: nodeWebSocket,
  });
  const strangerNet = new PeerNetwork(strangerSig, nodeRtcFactory(), { retries: 0 });
  cleanups.push(() => {
    strangerNet.close();
    strangerSig.close();
  });
  const firstStep = new Promise((resolve) => s.coordinator.events.once('step', resolve));

  await firstStep;
  const dial = await strangerNet.connect(first.peerId).then(
    () => null,
    (err: unknown) => err,
  );
  expect(dial).toBeInstanceOf(ConnectError);
  expect(String(dial)).toMatch(/not accepted/);

  const done = await s.coordinator.finished();
  await injected;
  expect(done.map((r) => r.step)).toEqual([0, 1, 2]);
  expect(done.every((r) => r.attempts === 1)).toBe(true);
  // Refused at the link, counted per sender, reported to the coordinator.
  expect(first.refusedTensors.get(middle.peerId)).toBe(3);
  expect(last.refusedTensors.get(middle.peerId)).toBe(1);
  await expect.poll(() => reports.filter((r) => r.peer === middle.peerId).length).toBe(4);
  expect(reports.filter((r) => r.peer === middle.peerId).map((r) => r.reason.replace(/^refused tensor: /, '').split(' ')[0])).toEqual(
    expect.arrayContaining(['tie', 'act', 'stage', 'allreduce']),
  );
  // Training unaffected: the single-peer engine's weights (the swarm's parity tolerance) and losses.
  const ref = await reference(run);
  cleanups.push(() => ref.rt.destroy());
  const cmp = await compareToReference(s.peers, ref.params);
  expect(cmp.worst.score).toBeLessThan(1e-5);
  for (let i = 0; i < run.steps; i++) expect(Math.abs(done[i].loss - ref.losses[i])).toBeLessThan(1e-5 * Math.max(1, ref.losses[i]));
}, 120_000);
