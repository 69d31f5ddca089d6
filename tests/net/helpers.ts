// Shared setup for the network suites: a real signaling server on an ephemeral loopback port and Node peers.

import WebSocket from 'ws';
import { startSignalingServer, type SignalingServer, type SignalingServerOptions } from '../../signaling-server/server';
import { PeerNetwork, type PeerNetworkOptions } from '../../src/net/peer-network';
import { nodeRtcFactory, nodeWebSocket } from '../../src/net/rtc-node';
import { SignalingClient } from '../../src/net/signaling-client';
import type { Role } from '../../src/net/signaling-protocol';
import type { Transport } from '../../src/net/transport';

export async function startServer(opts: SignalingServerOptions = {}): Promise<SignalingServer> {
  return startSignalingServer({ host: '127.0.0.1', port: 0, ...opts });
}

export function join(server: SignalingServer, room: string, peerId: string, role: Role = 'peer'): Promise<SignalingClient> {
  return SignalingClient.connect(server.url, { room, peerId, role, WebSocket: nodeWebSocket });
}

export async function nodePeer(
  server: SignalingServer,
  room: string,
  peerId: string,
  options: PeerNetworkOptions = {},
): Promise<{ signaling: SignalingClient; network: PeerNetwork; close(): void }> {
  const signaling = await join(server, room, peerId);
  const network = new PeerNetwork(signaling, nodeRtcFactory(), options);
  return {
    signaling,
    network,
    close() {
      network.close();
      signaling.close();
    },
  };
}

export type NodePeer = Awaited<ReturnType<typeof nodePeer>>;

/** Two Node peers in `room` with one open link: `ab` is the dialer's end, `ba` the answerer's. */
export async function linkedPair(
  server: SignalingServer,
  room: string,
  ids: [dialer: string, answerer: string],
): Promise<{ a: NodePeer; b: NodePeer; ab: Transport; ba: Transport; close(): void }> {
  const a = await nodePeer(server, room, ids[0]);
  const b = await nodePeer(server, room, ids[1]);
  const incoming = nextEvent<Transport>((h) => b.network.onConnection(h), 30_000);
  const ab = await a.network.connect(ids[1]);
  const ba = await incoming;
  return {
    a,
    b,
    ab,
    ba,
    close() {
      a.close();
      b.close();
    },
  };
}

/** A raw ws client for feeding the server messages the typed client would never produce. */
export async function rawSocket(server: SignalingServer): Promise<{
  ws: WebSocket;
  next(): Promise<Record<string, unknown>>;
  send(data: string | Buffer): void;
  closed: Promise<{ code: number; reason: string }>;
}> {
  const ws = new WebSocket(server.url);
  const queue: Record<string, unknown>[] = [];
  const waiters: ((m: Record<string, unknown>) => void)[] = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as Record<string, unknown>;
    const w = waiters.shift();
    if (w) w(msg);
    else queue.push(msg);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    send: (data) => ws.send(data),
    next: () => {
      const m = queue.shift();
      return m ? Promise.resolve(m) : new Promise((resolve) => waiters.push(resolve));
    },
    closed,
  };
}

export function nextEvent<T>(subscribe: (h: (v: T) => void) => () => void, timeoutMs = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = subscribe((v) => {
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}
