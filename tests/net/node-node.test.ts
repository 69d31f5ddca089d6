// Node peer to Node peer over real node-datachannel WebRTC (loopback only), through the signaling server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignalingServer } from '../../signaling-server/server';
import { ConnectError } from '../../src/net/peer-network';
import type { IncomingTensor } from '../../src/net/tensor';
import type { Transport } from '../../src/net/transport';
import { linkedPair, nextEvent, nodePeer, join, startServer, type NodePeer } from './helpers';
import { firstMismatch, patternBytes } from './pattern';

let server: SignalingServer;
let a: NodePeer;
let b: NodePeer;
let ab: Transport;
let ba: Transport;

beforeAll(async () => {
  server = await startServer();
  ({ a, b, ab, ba } = await linkedPair(server, 'nn', ['a', 'b']));
});
afterAll(async () => {
  a?.close();
  b?.close();
  await server?.close();
});

function receiveOne(t: Transport, timeoutMs = 30_000): Promise<IncomingTensor> {
  return nextEvent<IncomingTensor>((h) => t.onTensor(h), timeoutMs);
}

describe('Node <-> Node over node-datachannel', () => {
  for (const [label, size] of [
    ['1 B', 1],
    ['255 KiB', 255 * 1024],
    ['1 MiB', 1024 * 1024],
    ['64 MiB', 64 * 1024 * 1024],
  ] as const) {
    it(`sends ${label} bit-identical`, async () => {
      const data = patternBytes(size, size);
      const got = receiveOne(ba);
      await ab.sendTensor({ kind: 'act', dtype: 'u8', shape: [size], data, meta: { step: 5, mb: 1 } });
      const t = await got;
      expect(t.meta).toEqual({ step: 5, mb: 1 });
      expect(t.bytes.byteLength).toBe(size);
      expect(firstMismatch(size, t.bytes, size)).toBe(-1);
      expect(ba.stats().pendingBytes).toBe(0);
    });
  }

  it('works the other way round with f32 and control messages', async () => {
    const f = new Float32Array(300_000).map((_, i) => Math.sin(i));
    const got = receiveOne(ab);
    const ctl = nextEvent((h) => ab.onControl(h));
    ba.sendControl({ type: 'status', state: 'training', step: 9 });
    await ba.sendTensor({ kind: 'grad', dtype: 'f32', shape: [1000, 300], data: f });
    expect(await ctl).toEqual({ type: 'status', state: 'training', step: 9 });
    const t = await got;
    expect(t.shape).toEqual([1000, 300]);
    // Byte comparison: a deep equal of 300k floats would block the event loop for seconds (and trip heartbeats).
    expect(Buffer.compare(Buffer.from(t.bytes), Buffer.from(f.buffer))).toBe(0);
    expect(await ab.ping()).toBeLessThan(1000);
  });

  it('a clean close is seen by the other side as remote', async () => {
    const c = await nodePeer(server, 'nn', 'c');
    const incoming = nextEvent<Transport>((h) => b.network.onConnection(h), 30_000);
    const cb = await c.network.connect(b.signaling.peerId);
    const bc = await incoming;
    const closed = nextEvent((h) => bc.onClose(h));
    cb.close();
    expect(await closed).toMatchObject({ reason: 'remote' });
    expect(cb.closeInfo).toMatchObject({ reason: 'local' });
    c.close();
  });

  it('gives up with ConnectError after timeout and retries when nobody answers', async () => {
    const mute = await join(server, 'nn', 'mute'); // in the room, but never answers offers
    const offers: string[] = [];
    const aborts: string[] = [];
    mute.on('signal', (ev) => (ev.data.kind === 'offer' ? offers : ev.data.kind === 'abort' ? aborts : []).push(ev.connId));
    const d = await nodePeer(server, 'nn', 'd', { connectTimeoutMs: 400, retries: 2, retryDelayMs: 50 });
    const failures: number[] = [];
    d.network.events.on('attempt-failed', (f) => failures.push(f.attempt));
    const err = await d.network.connect(mute.peerId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).attempts).toHaveLength(3);
    expect(failures).toEqual([0, 1, 2]);
    // Each attempt used its own connection id and told the other side it was abandoned.
    await expect.poll(() => aborts.length).toBe(3);
    expect(new Set(offers).size).toBe(3);
    expect(aborts).toEqual(offers);
    d.close();
    mute.close();
  });

  it('fails fast for a peer that is not in the room', async () => {
    const e = await nodePeer(server, 'nn', 'e', { connectTimeoutMs: 300 });
    await expect(e.network.connect('nobody')).rejects.toThrow(/not in room/);
    e.close();
  });
});
