// A bare data channel between two peers, negotiated over a signaling client exactly like PeerNetwork's links
// but without framing. Exists to measure what framing costs (bench/net.ts); swarm code uses PeerNetwork.
// Use a signaling client that has no PeerNetwork attached: both would answer the same offers.

import type { RtcRawChannel } from './rtc-channel.js';
import { RtcSession, type RtcFactory } from './rtc-session.js';
import type { SignalingClient } from './signaling-client.js';
import { withTimeout } from './timers.js';

const identity = (raw: RtcRawChannel) => raw;

function route(signaling: SignalingClient, session: RtcSession<RtcRawChannel>): () => void {
  return signaling.on('signal', (ev) => {
    if (ev.from === session.remotePeerId && ev.connId === session.connId) void session.handle(ev.data).catch(() => session.close('signal failed'));
  });
}

export async function dialRaw(signaling: SignalingClient, factory: RtcFactory, peerId: string, timeoutMs = 10_000): Promise<RtcRawChannel> {
  const connId = `raw${Math.random().toString(36).slice(2, 10)}`;
  const session = new RtcSession(peerId, connId, 'dialer', factory, (d) => signaling.sendSignal(peerId, connId, d), identity);
  const off = route(signaling, session);
  try {
    await session.start();
    return await withTimeout(session.opened(), timeoutMs, `raw link to ${peerId}`);
  } catch (err) {
    session.close('failed');
    throw err;
  } finally {
    off();
  }
}

/** Answers the next raw offer on this signaling client. */
export function acceptRaw(signaling: SignalingClient, factory: RtcFactory, timeoutMs = 10_000): Promise<RtcRawChannel> {
  return withTimeout(
    new Promise<RtcRawChannel>((resolve, reject) => {
      const offOffer = signaling.on('signal', (ev) => {
        if (ev.data.kind !== 'offer') return;
        offOffer();
        const session = new RtcSession(ev.from, ev.connId, 'answerer', factory, (d) => signaling.sendSignal(ev.from, ev.connId, d), identity);
        const off = route(signaling, session);
        void session.handle(ev.data).catch(reject);
        session.opened().then(resolve, reject).finally(off);
      });
    }),
    timeoutMs,
    'accepting a raw link',
  );
}
