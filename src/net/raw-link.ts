// A bare data channel between two peers, negotiated over a signaling client exactly like PeerNetwork's links
// but without framing. Exists to measure what framing costs (bench/net.ts); swarm code uses PeerNetwork.
// Use a signaling client that has no PeerNetwork attached: both would answer the same offers.

import type { RtcRawChannel } from './rtc-channel';
import { RtcSession, type RtcFactory, type SessionAuth } from './rtc-session';
import type { SignalEvent, SignalingLink } from './signaling-client';
import { withTimeout } from './timers';

const same = (raw: RtcRawChannel) => raw;

const authOf = (signaling: SignalingLink, peerId: string): SessionAuth => ({
  identity: signaling.identity,
  remoteKey: () => signaling.keyOf(peerId),
});

/** Feeds this session's signals to it; the first failure rejects `failed` with its real cause. */
function route(signaling: SignalingLink, session: RtcSession<RtcRawChannel>, fail: (err: Error) => void): () => void {
  return signaling.on('signal', (ev) => {
    if (ev.from !== session.remotePeerId || ev.connId !== session.connId) return;
    session.handle(ev.data).catch((err: unknown) => fail(new Error(`raw link: ${ev.data.kind} failed: ${(err as Error)?.message ?? err}`)));
  });
}

async function open(
  session: RtcSession<RtcRawChannel>,
  signaling: SignalingLink,
  first: () => Promise<void>,
  timeoutMs: number,
): Promise<RtcRawChannel> {
  let fail: (err: Error) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const off = route(signaling, session, fail);
  try {
    await first();
    return await withTimeout(Promise.race([session.opened(), failed]), timeoutMs, `raw link with ${session.remotePeerId}`);
  } catch (err) {
    session.close();
    throw err;
  } finally {
    off();
  }
}

export function dialRaw(signaling: SignalingLink, factory: RtcFactory, peerId: string, timeoutMs = 10_000): Promise<RtcRawChannel> {
  const connId = `raw${Math.random().toString(36).slice(2, 10)}`;
  const session = new RtcSession(peerId, connId, 'dialer', factory, (d) => signaling.sendSignal(peerId, connId, d), same, authOf(signaling, peerId));
  return open(session, signaling, () => session.start(), timeoutMs);
}

/** Answers the next offer that arrives on this signaling client. */
export function acceptRaw(signaling: SignalingLink, factory: RtcFactory, timeoutMs = 10_000): Promise<RtcRawChannel> {
  const offer = new Promise<SignalEvent>((resolve) => {
    const off = signaling.on('signal', (ev) => {
      if (ev.data.kind !== 'offer') return;
      off();
      resolve(ev);
    });
  });
  return withTimeout(offer, timeoutMs, 'waiting for a raw offer').then((ev) => {
    const session = new RtcSession(
      ev.from,
      ev.connId,
      'answerer',
      factory,
      (d) => signaling.sendSignal(ev.from, ev.connId, d),
      same,
      authOf(signaling, ev.from),
    );
    return open(session, signaling, () => session.handle(ev.data), timeoutMs);
  });
}
