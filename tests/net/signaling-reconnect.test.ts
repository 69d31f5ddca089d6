// Signaling server restart (docs/resilience.md): clients whose connection broke rejoin the real server restarted on
// the same port, with their queued messages delivered in order, the roster diffed (new members join, missing ones
// leave only after the grace), and signed control continuing across the outage; a refused rejoin, a connection
// replaced by the same key (4001) and an outage longer than reconnectMs end the client instead.
import { afterEach, describe, expect, it } from 'vitest';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server';
import type { ControlPayload } from '../../src/net/control-envelope';
import { nodeRtcFactory, nodeWebSocket } from '../../src/net/rtc-node';
import { PeerNetwork } from '../../src/net/peer-network';
import {
  SignalingClient,
  SignalingError,
  type SignalingConnectOptions,
  type SignalingEvents,
  type WebSocketConstructor,
} from '../../src/net/signaling-client';
import type { ReconnectOptions } from '../../src/net/reconnect-policy';
import type { Transport } from '../../src/net/transport';
import { connectSwarm } from '../../src/protocol/control-codec';
import type { ControlMessage } from '../../src/protocol/messages';
import { testIdentity } from '../support/identity';
import { coordinatorLabel, nextEvent, roomFingerprint } from './helpers';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real server that can be stopped and started again on the same port. */
async function restartable(): Promise<{ url: string; stop(): Promise<void>; start(): Promise<void>; current(): SignalingServer | null }> {
  let server: SignalingServer | null = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  const port = server.port;
  const url = server.url;
  cleanups.push(() => server?.close());
  return {
    url,
    current: () => server,
    async stop() {
      await server?.close();
      server = null;
    },
    async start() {
      server = await startSignalingServer({ host: '127.0.0.1', port });
    },
  };
}

const FAST: Partial<ReconnectOptions> = { baseDelayMs: 50, maxDelayMs: 400, rejoinGraceMs: 1500 };

async function client(
  url: string,
  room: string,
  label: string,
  extra: Partial<SignalingConnectOptions<ControlPayload>> = {},
): Promise<SignalingClient> {
  const role = extra.role ?? 'peer';
  const identity = await testIdentity(role === 'coordinator' ? coordinatorLabel(room) : label);
  const c = await SignalingClient.connect(url, {
    room,
    role,
    coordinator: roomFingerprint(room),
    identity,
    WebSocket: nodeWebSocket,
    log: () => undefined,
    ...extra,
    reconnect: { ...FAST, ...extra.reconnect },
  });
  cleanups.push(() => c.close());
  return c;
}

/** Every `event` the client emits, with the time it came. */
function record<T>(subscribe: (h: (v: T) => void) => () => void): { at: number; v: T }[] {
  const seen: { at: number; v: T }[] = [];
  cleanups.push(subscribe((v) => seen.push({ at: performance.now(), v })));
  return seen;
}

/** Resolves once `cond` holds (checked every 20 ms). */
async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves when `n` values satisfy `ok`. */
function collect<T>(subscribe: (h: (v: T) => void) => () => void, n: number, timeoutMs = 20_000): Promise<T[]> {
  const got: T[] = [];
  return new Promise<T[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`only ${got.length} of ${n} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = subscribe((v) => {
      got.push(v);
      if (got.length < n) return;
      clearTimeout(timer);
      off();
      resolve(got);
    });
  });
}

describe('signaling reconnect', () => {
  it('rejoins a restarted server: queued messages arrive in order, new members join, a missing one leaves after the grace', async () => {
    const srv = await restartable();
    const room = 'reconnect';
    const coord = await client(srv.url, room, 'coordinator', { role: 'coordinator' });
    const a = await client(srv.url, room, 'a');
    const b = await client(srv.url, room, 'b');
    await a.waitForPeer(b.peerId, 5000);
    await coord.waitForPeer(b.peerId, 5000);

    const aLeft = record<{ peerId: string }>((h) => a.on('peer-left', h));
    const coordLeft = record<{ peerId: string }>((h) => coord.on('peer-left', h));
    const aJoined = record<{ peerId: string }>((h) => a.on('peer-joined', h));
    const aBack = record<{ ms: number }>((h) => a.on('reconnected', h));
    const closes = record<unknown>((h) => a.on('close', h));
    const reconnecting = nextEvent<SignalingEvents['reconnecting']>((h) => a.on('reconnecting', h), 5000);
    const coordDown = nextEvent((h) => coord.on('reconnecting', h), 5000);

    await srv.stop();
    const r = await reconnecting;
    await coordDown;
    expect(r.code).toBe(1006);
    expect(a.isOpen).toBe(false);
    expect(a.isUsable).toBe(true);
    b.close(); // b never comes back

    // Sent while disconnected: queued, then delivered in order once both ends are back.
    const N = 150; // more than one flush burst
    const fromA = collect<{ from: string; msg: ControlPayload }>((h) => coord.on('control', h), N);
    const fromCoord = collect<{ from: string; msg: ControlPayload }>((h) => a.on('control', h), N);
    for (let i = 0; i < N; i++) {
      a.sendControl({ type: 'note', i });
      coord.sendControl({ type: 'all', i }, '*');
    }
    expect(a.queued).toBe(N);
    const pings = a.ping(20_000); // waits for the rejoin

    await srv.start();
    const d = await client(srv.url, room, 'd'); // a member the old roster did not have
    const got = await fromA;
    expect(got.map((m) => Number(m.msg.i))).toEqual([...Array(N).keys()]);
    expect(got.every((m) => m.from === a.peerId)).toBe(true);
    expect((await fromCoord).map((m) => Number(m.msg.i))).toEqual([...Array(N).keys()]);
    expect(await pings).toBeGreaterThan(0);
    expect(a.queued).toBe(0);

    // Grace: b is announced as left only once it has been missing for rejoinGraceMs after a's rejoin.
    await until(() => aLeft.length > 0 && coordLeft.length > 0, 10_000);
    expect(aLeft.map((e) => e.v.peerId)).toEqual([b.peerId]); // the coordinator rejoined: never announced as left
    expect(coordLeft.map((e) => e.v.peerId)).toEqual([b.peerId]);
    expect(aBack).toHaveLength(1);
    expect(aLeft[0].at - aBack[0].at).toBeGreaterThanOrEqual((FAST.rejoinGraceMs ?? 0) - 5);
    expect(a.peers.has(b.peerId)).toBe(false);
    if (!a.peers.has(d.peerId)) await a.waitForPeer(d.peerId, 5000);
    expect(aJoined.map((e) => e.v.peerId)).toEqual([d.peerId]);
    expect([...a.peers.keys()].sort()).toEqual([coord.peerId, d.peerId].sort());
    expect(a.isPresent(coord.peerId)).toBe(true);
    expect(closes).toHaveLength(0);
    console.log(`reconnect: outage ${aBack[0].v.ms.toFixed(0)} ms (a), ${N} queued messages each way delivered in order`);
  }, 60_000);

  it('signed control continues across the outage: seq goes on, each message delivered once, replayed copies dropped', async () => {
    const srv = await restartable();
    const room = 'reconnect-signed';
    const base = { room, WebSocket: nodeWebSocket, reconnect: FAST, log: () => undefined };
    const coord = await connectSwarm(srv.url, { ...base, role: 'coordinator', identity: await testIdentity(coordinatorLabel(room)) });
    const peer = await connectSwarm(srv.url, { ...base, role: 'peer', coordinator: roomFingerprint(room), identity: await testIdentity('sp') });
    cleanups.push(
      () => coord.close(),
      () => peer.close(),
    );
    if (!coord.peers.has(peer.peerId)) await coord.signaling.waitForPeer(peer.peerId, 5000);
    const got = collect<{ from: string; msg: ControlMessage }>((h) => coord.on('control', h), 9);
    const note = (i: number): ControlMessage => ({ type: 'status', state: 'ready', detail: `m${i}` });
    const first = collect<unknown>((h) => coord.on('control', h), 3);
    for (let i = 0; i < 3; i++) peer.sendControl(note(i));
    await first; // delivered before the server goes: a message still in flight when it dies is lost with it
    const down = nextEvent((h) => peer.on('reconnecting', h), 5000);
    await srv.stop();
    await down;
    for (let i = 3; i < 6; i++) peer.sendControl(note(i));
    await srv.start();
    await nextEvent((h) => peer.on('reconnected', h), 10_000);
    for (let i = 6; i < 9; i++) peer.sendControl(note(i));
    const msgs = await got;
    expect(msgs.map((m) => (m.msg as { detail?: string }).detail)).toEqual([...Array(9).keys()].map((i) => `m${i}`));
    // The three sent just before the outage were replayed after it (connectSwarm's replayControlMs): the copies the
    // coordinator had already got are dropped by seq, nothing else is.
    expect(coord.drops['stale-seq']).toBeLessThanOrEqual(3);
    expect(Object.values(coord.drops).reduce((a, b) => a + b, 0)).toBe(coord.drops['stale-seq']);
  }, 30_000);

  it('an open data channel stays up through the outage, and a new link is negotiated after the rejoin', async () => {
    const srv = await restartable();
    const room = 'reconnect-rtc';
    const a = await client(srv.url, room, 'ra');
    const b = await client(srv.url, room, 'rb');
    const c = await client(srv.url, room, 'rc');
    const na = new PeerNetwork(a, nodeRtcFactory());
    const nb = new PeerNetwork(b, nodeRtcFactory());
    const nc = new PeerNetwork(c, nodeRtcFactory());
    cleanups.push(
      () => na.close(),
      () => nb.close(),
      () => nc.close(),
    );
    if (!a.peers.has(b.peerId)) await a.waitForPeer(b.peerId, 5000);
    const incoming = nextEvent<Transport>((h) => nb.onConnection(h), 30_000);
    const ab = await na.connect(b.peerId);
    const ba = await incoming;
    const downs = Promise.all([a, b, c].map((x) => nextEvent((h) => x.on('reconnecting', h), 5000)));
    await srv.stop();
    await downs;
    // The link does not need the server: a control frame crosses it while the server is down.
    const over = nextEvent<unknown>((h) => ba.onControl(h), 5000);
    ab.sendControl({ type: 'hi', during: 'outage' });
    expect(await over).toEqual({ type: 'hi', during: 'outage' });
    // A dial started during the outage: its offer waits in the queue and the negotiation finishes after the rejoin.
    const toC = nextEvent<Transport>((h) => nc.onConnection(h), 30_000);
    const dial = na.connect(c.peerId);
    await srv.start();
    const ac = await dial;
    await toC;
    expect(ac.isOpen).toBe(true);
    expect(ab.isOpen).toBe(true);
  }, 60_000);

  it('a refused rejoin ends the client with the server error, without a retry loop', async () => {
    const srv = await restartable();
    const room = 'reconnect-refused';
    const gate = { open: true };
    // The peer's sockets reach the server only while the gate is open (closed: a port nobody listens on).
    const Gated = class extends (nodeWebSocket as unknown as new (url: string) => object) {
      constructor(url: string) {
        super(gate.open ? url : 'ws://127.0.0.1:9/');
      }
    } as unknown as WebSocketConstructor;
    const coord = await client(srv.url, room, 'coordinator', { role: 'coordinator', token: 'old-token', reconnect: { reconnectMs: 0 } });
    const p = await client(srv.url, room, 'rp', { token: 'old-token', WebSocket: Gated });
    const attempts = record<unknown>((h) => p.on('reconnecting', h));
    const down = nextEvent((h) => p.on('reconnecting', h), 5000);
    const coordClosed = nextEvent((h) => coord.on('close', h), 5000);
    gate.open = false;
    await srv.stop();
    await Promise.all([down, coordClosed]);
    await srv.start();
    // The room's coordinator is back first, now with another token.
    await client(srv.url, room, 'coordinator', { role: 'coordinator', token: 'new-token' });
    const closed = nextEvent<SignalingEvents['close']>((h) => p.on('close', h), 20_000);
    gate.open = true;
    const ev = await closed;
    expect(ev.error).toBeInstanceOf(SignalingError);
    expect(ev.error?.code).toBe('bad-token');
    expect(ev.reason).toContain('refused the rejoin');
    const n = attempts.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(attempts.length).toBe(n); // no retry after the refusal
    expect(p.isUsable).toBe(false);
    expect(() => p.sendControl({ type: 'late' })).toThrow(SignalingError);
  }, 30_000);

  it('a connection replaced by the same key (4001, a reloaded tab) does not reconnect', async () => {
    const srv = await restartable();
    const room = 'reconnect-replaced';
    const old = await client(srv.url, room, 'tab');
    const attempts = record<unknown>((h) => old.on('reconnecting', h));
    const closed = nextEvent<SignalingEvents['close']>((h) => old.on('close', h), 5000);
    const fresh = await client(srv.url, room, 'tab');
    const ev = await closed;
    expect(ev.code).toBe(4001);
    expect(ev.error).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1000));
    expect(attempts).toHaveLength(0);
    expect(fresh.isOpen).toBe(true);
    expect(srv.current()?.stats().connections).toBe(1);
  }, 20_000);

  it('gives up after reconnectMs, and the queue is bounded', async () => {
    const srv = await restartable();
    const room = 'reconnect-giveup';
    const p = await client(srv.url, room, 'gp', { reconnect: { reconnectMs: 1500, maxQueued: 10 } });
    const attempts = record<{ attempt: number }>((h) => p.on('reconnecting', h));
    const closed = nextEvent<SignalingEvents['close']>((h) => p.on('close', h), 10_000);
    await srv.stop();
    await nextEvent((h) => p.on('reconnecting', h), 5000);
    for (let i = 0; i < 10; i++) p.sendSignal('x'.repeat(16), 'c1', { kind: 'abort' });
    let full: unknown;
    try {
      p.sendSignal('x'.repeat(16), 'c1', { kind: 'abort' });
    } catch (err) {
      full = err;
    }
    expect(full).toBeInstanceOf(SignalingError);
    expect((full as SignalingError).code).toBe('queue-full');
    const ev = await closed;
    expect(ev.reason).toContain('gave up reconnecting');
    expect(ev.error?.code).toBe('closed');
    expect(attempts.length).toBeGreaterThan(1);
    expect(attempts.map((e) => e.v.attempt)).toEqual(attempts.map((_, i) => i + 1));
    expect(p.isUsable).toBe(false);
    await expect(p.ping(100)).rejects.toThrow(SignalingError);
  }, 20_000);
});
