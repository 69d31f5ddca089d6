// Wire accounting at the transport: every byte a FramedTransport or a SignalingClient sends is counted once, under
// the tensor kind it carried (framing included), WIRE_CONTROL or WIRE_LINK.
import { afterEach, describe, expect, it } from 'vitest';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server';
import { FramedTransport } from './framed-transport';
import { chunkPayloadSize, TENSOR_HEADER_BYTES } from './framing';
import { createMemoryChannelPair } from './memory-channel';
import { nodeWebSocket } from './rtc-node';
import { SIGNATURE_CHARS } from './identity';
import { SignalingClient } from './signaling-client';
import { utf8Length, WIRE_CONTROL, WIRE_LINK, WireMeter } from './wire-meter';

const enc = new TextEncoder();
/** Bytes of one tensor on the wire: every chunk's header, the descriptor once, the payload. */
function tensorWireBytes(kind: string, shape: number[], meta: Record<string, string | number>, payload: number, chunk: number): number {
  const chunks = Math.max(1, Math.ceil(payload / chunk));
  return chunks * TENSOR_HEADER_BYTES + enc.encode(JSON.stringify({ kind, shape, meta })).byteLength + payload;
}

describe('WireMeter', () => {
  it('sums per key; take() returns what is new since the previous take', () => {
    const m = new WireMeter();
    m.add('act', 10);
    m.add('act', 5);
    m.add(WIRE_CONTROL, 3);
    m.add('grad', 0);
    m.add('grad', Number.NaN);
    expect(m.snapshot()).toEqual({ act: 15, [WIRE_CONTROL]: 3 });
    expect(m.take()).toEqual({ act: 15, [WIRE_CONTROL]: 3 });
    expect(m.take()).toEqual({});
    m.add('act', 7);
    expect(m.take()).toEqual({ act: 7 });
    expect(m.snapshot()).toEqual({ act: 22, [WIRE_CONTROL]: 3 });
  });

  it('utf8Length is the UTF-8 byte count', () => {
    for (const s of ['', 'abc', '{"a":"é"}', '日本', '\u{1F600}x']) expect(utf8Length(s)).toBe(enc.encode(s).byteLength);
  });
});

describe('FramedTransport byte counts', () => {
  it('counts each tensor under its kind with its framing, control frames under #control, and nothing twice', async () => {
    const [ra, rb] = createMemoryChannelPair();
    const shared = new WireMeter();
    // No heartbeats during the test: the counts must be exact.
    const opts = { heartbeat: { intervalMs: 60_000, deadAfterMs: 120_000 }, meter: shared };
    const a = new FramedTransport('b', ra, opts);
    const b = new FramedTransport('a', rb, {});
    const got: string[] = [];
    b.onTensor((t) => got.push(t.kind));
    const chunk = chunkPayloadSize(ra.maxMessageSize);
    const big = 2 * chunk + 17; // three chunks
    await a.sendTensor({ kind: 'act', dtype: 'u8', shape: [big], data: new Uint8Array(big), meta: { step: 1, mb: 0 } });
    await a.sendTensor({ kind: 'act', dtype: 'f32', shape: [3], data: new Float32Array(3) });
    await a.sendTensor({ kind: 'allreduce', dtype: 'u8', shape: [5], data: new Uint8Array(5), meta: { tag: 'x' } });
    a.sendControl({ type: 'status', state: 'ok' });
    await expect.poll(() => got.length).toBe(3);
    const act = tensorWireBytes('act', [big], { step: 1, mb: 0 }, big, chunk) + tensorWireBytes('act', [3], {}, 12, chunk);
    const ar = tensorWireBytes('allreduce', [5], { tag: 'x' }, 5, chunk);
    const s = a.stats();
    expect(s.sentByKind.act).toBe(act);
    expect(s.sentByKind.allreduce).toBe(ar);
    expect(s.sentByKind[WIRE_CONTROL]).toBeGreaterThan(utf8Length('{"type":"status","state":"ok"}'));
    expect(Object.values(s.sentByKind).reduce((x, y) => x + y, 0)).toBe(s.bytesSent);
    expect(shared.snapshot()).toEqual(s.sentByKind);
    // The receiver saw exactly the bytes the sender counted.
    expect(b.stats().bytesReceived).toBe(s.bytesSent);
    a.close();
    expect(a.stats().sentByKind[WIRE_LINK]).toBeGreaterThan(0); // the goodbye
    expect(shared.snapshot()).toEqual(a.stats().sentByKind);
    b.close();
  });

  it('a meter shared by two transports holds the sum of both', async () => {
    const shared = new WireMeter();
    const quiet = { heartbeat: { intervalMs: 60_000, deadAfterMs: 120_000 }, meter: shared };
    const [r1, r2] = createMemoryChannelPair();
    const [r3, r4] = createMemoryChannelPair();
    const t1 = new FramedTransport('x', r1, quiet);
    const t2 = new FramedTransport('y', r3, quiet);
    const sinks = [new FramedTransport('p', r2), new FramedTransport('q', r4)];
    await t1.sendTensor({ kind: 'grad', dtype: 'u8', shape: [100], data: new Uint8Array(100) });
    await t2.sendTensor({ kind: 'grad', dtype: 'u8', shape: [40], data: new Uint8Array(40) });
    expect(shared.snapshot().grad).toBe((t1.stats().sentByKind.grad ?? 0) + (t2.stats().sentByKind.grad ?? 0));
    expect(shared.snapshot().grad).toBe(tensorWireBytes('grad', [100], {}, 100, 1 << 30) + tensorWireBytes('grad', [40], {}, 40, 1 << 30));
    for (const t of [t1, t2, ...sinks]) t.close();
  });
});

describe('SignalingClient byte counts', () => {
  let server: SignalingServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('counts control messages under #control and the join under #link, as the JSON text sent', async () => {
    server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
    const meter = new WireMeter();
    const coord = await SignalingClient.connect(server.url, { room: 'r', role: 'coordinator', WebSocket: nodeWebSocket });
    const coordinator = coord.coordinatorFingerprint;
    const peer = await SignalingClient.connect(server.url, { room: 'r', role: 'peer', coordinator, WebSocket: nodeWebSocket, meter });
    // A signature is random, but its length is fixed (SIGNATURE_CHARS): the join's text has a known length.
    const sig = 'x'.repeat(SIGNATURE_CHARS);
    const join = utf8Length(JSON.stringify({ type: 'join', room: 'r', role: 'peer', coordinator, key: peer.identity.publicKey, sig }));
    expect(meter.snapshot()).toEqual({ [WIRE_LINK]: join });
    const heard: unknown[] = [];
    coord.on('control', ({ msg }) => heard.push(msg));
    const msg = { type: 'status', state: 'héllo' };
    peer.sendControl(msg);
    await expect.poll(() => heard.length).toBe(1);
    expect(meter.take()).toEqual({ [WIRE_LINK]: join, [WIRE_CONTROL]: utf8Length(JSON.stringify({ type: 'control', msg })) });
    peer.close();
    coord.close();
  });
});
