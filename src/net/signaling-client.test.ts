// SignalingClient.connect against a scripted server socket (the transport only; the client is the real one): what
// the server sends while the client checks the room's roster must reach the handlers the caller sets up right after
// connect resolves, in the server's order.
import { describe, expect, it } from 'vitest';
import { ephemeralIdentity, type Identity } from './identity';
import { SignalingClient } from './signaling-client';
import type { WebSocketLike } from './signaling-handshake';

const OPEN = 1;

/** A socket whose "server" answers the join with `joined` and then, in the same tick, `after`. */
function scriptedSocket(joinedFor: (join: { room: string; coordinator: string }) => unknown, after: () => unknown[]) {
  return class implements WebSocketLike {
    readyState = 0;
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: unknown }) => void) | null = null;
    onclose: ((ev: { code: number; reason: string }) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    constructor(_url: string) {
      setTimeout(() => {
        this.readyState = OPEN;
        this.onmessage?.({ data: JSON.stringify({ type: 'challenge', nonce: 'A'.repeat(43) }) });
      }, 0);
    }
    send(data: string): void {
      const msg = JSON.parse(data) as { type: string; room: string; coordinator: string };
      if (msg.type !== 'join') return;
      setTimeout(() => {
        this.onmessage?.({ data: JSON.stringify(joinedFor(msg)) });
        for (const m of after()) this.onmessage?.({ data: JSON.stringify(m) });
      }, 0);
    }
    close(): void {
      this.readyState = 3;
    }
  };
}

describe('SignalingClient.connect', () => {
  it('delivers control messages that arrived while the roster was being checked, after the caller subscribed, in order', async () => {
    const me: Identity = await ephemeralIdentity();
    const peers = await Promise.all([ephemeralIdentity(), ephemeralIdentity(), ephemeralIdentity()]);
    const roster = peers.map((p) => ({ peerId: p.id, role: 'peer', key: p.publicKey }));
    // Each peer greets the coordinator that just arrived: hello, then peer-info.
    const greetings = peers.flatMap((p) => [
      { type: 'control', from: p.id, msg: { type: 'hello', n: 0 } },
      { type: 'control', from: p.id, msg: { type: 'peer-info', n: 1 } },
    ]);
    const Ctor = scriptedSocket(
      (join) => ({ type: 'joined', room: join.room, coordinator: join.coordinator, peerId: me.id, role: 'coordinator', peers: roster }),
      () => greetings,
    );
    const client = await SignalingClient.connect('ws://scripted', {
      room: 'r',
      role: 'coordinator',
      identity: me,
      WebSocket: Ctor,
      log: () => undefined,
    });
    // The caller subscribes right after connect resolves (CoordinatorRun, connectSwarm, SwarmPeer.join all do).
    const got: string[] = [];
    client.on('control', ({ from, msg }) => got.push(`${from.slice(0, 4)}:${msg.type}`));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(got).toEqual(greetings.map((g) => `${g.from.slice(0, 4)}:${g.msg.type}`));
    expect([...client.peers.keys()].sort()).toEqual(peers.map((p) => p.id).sort());
    client.close();
  });
});
