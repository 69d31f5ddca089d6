// Shared setup for the network suites: a real signaling server on an ephemeral loopback port and Node peers.
// Identities are deterministic test keys (tests/support/identity.ts): a peer labelled 'a' has id testId('a') in
// every room, and every room's coordinator key is the one labelled `coordinator/<room>`.

import WebSocket from 'ws';
import { startSignalingServer, type SignalingServer, type SignalingServerOptions } from '../../signaling-server/server';
import { PeerNetwork, type PeerNetworkOptions } from '../../src/net/peer-network';
import { nodeRtcFactory, nodeWebSocket } from '../../src/net/rtc-node';
import { SignalingClient } from '../../src/net/signaling-client';
import { joinText, type Role } from '../../src/net/signaling-protocol';
import type { Transport } from '../../src/net/transport';
import type { Identity } from '../../src/net/identity';
import { testFingerprint, testId, testIdentity } from '../support/identity';

/** Label of a room's coordinator key. */
export const coordinatorLabel = (room: string): string => `coordinator/${room}`;
/** The coordinator fingerprint every helper joins `room` with. */
export const roomFingerprint = (room: string): string => testFingerprint(coordinatorLabel(room));
/** The peer id of the test key labelled `label` (the coordinator's: coordinatorId(room)). */
export const idOf = testId;
export const coordinatorId = (room: string): string => testId(coordinatorLabel(room));

export async function startServer(opts: SignalingServerOptions = {}): Promise<SignalingServer> {
  return startSignalingServer({ host: '127.0.0.1', port: 0, ...opts });
}

/** Joins `room` as the test key `label` (a coordinator always with the room's coordinator key). */
export async function join(server: Pick<SignalingServer, 'url'>, room: string, label: string, role: Role = 'peer'): Promise<SignalingClient> {
  const identity = await testIdentity(role === 'coordinator' ? coordinatorLabel(room) : label);
  return SignalingClient.connect(server.url, { room, role, coordinator: roomFingerprint(room), identity, WebSocket: nodeWebSocket });
}

/** The text of a valid join for a raw socket that got `nonce`. */
export async function joinMessage(
  nonce: string,
  room: string,
  identity: Identity,
  role: Role = 'peer',
  extra: { coordinator?: string; token?: string; tokenHash?: string } = {},
): Promise<string> {
  const coordinator = extra.coordinator ?? (role === 'coordinator' ? identity.fingerprint : roomFingerprint(room));
  const sig = await identity.sign(joinText(nonce, room, role, coordinator));
  const { token, tokenHash } = extra;
  return JSON.stringify({ type: 'join', room, role, coordinator, key: identity.publicKey, sig, token, tokenHash });
}

export async function nodePeer(
  server: SignalingServer,
  room: string,
  label: string,
  options: PeerNetworkOptions = {},
): Promise<{ signaling: SignalingClient; network: PeerNetwork; close(): void }> {
  const signaling = await join(server, room, label);
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
  const ab = await a.network.connect(b.signaling.peerId);
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
  /** The server's challenge (already read off the queue). */
  nonce: string;
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
  const next = (): Promise<Record<string, unknown>> => {
    const m = queue.shift();
    return m ? Promise.resolve(m) : new Promise((resolve) => waiters.push(resolve));
  };
  const challenge = await next();
  if (challenge.type !== 'challenge' || typeof challenge.nonce !== 'string')
    throw new Error(`expected a challenge, got ${JSON.stringify(challenge)}`);
  return { ws, nonce: challenge.nonce, send: (data) => ws.send(data), next, closed };
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
