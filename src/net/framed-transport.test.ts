// Framing, reassembly and heartbeat over the in-memory channel pair (fast; real networks are covered in tests/net).
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ControlCodec } from './control-envelope';
import { FramedTransport } from './framed-transport';
import { chunkPayloadSize, encodeTensorChunk, encodeControlFrame, MAX_DESCRIPTOR_BYTES } from './framing';
import { createMemoryChannelPair } from './memory-channel';
import type { PartialDrop } from './reassembler';
import type { ProtocolError } from './transport';
import { firstMismatch, patternBytes } from '../../tests/net/pattern';

function pair(opts: ConstructorParameters<typeof FramedTransport>[2] = {}) {
  const [ra, rb] = createMemoryChannelPair();
  const a = new FramedTransport('b', ra, opts);
  const b = new FramedTransport('a', rb, opts);
  return { a, b, ra, rb };
}

// src/net knows no message of the layer above: a transport checks control payloads with the codec it is given.
const statusSchema = z.object({ type: z.literal('status'), state: z.string().min(1), step: z.number().int().optional() });
const statusOnly: ControlCodec<unknown> = {
  parse: (p) => {
    const r = statusSchema.safeParse(p);
    return r.success ? { ok: true, value: r.data } : { ok: false, error: r.error.message };
  },
};

const CHUNK = chunkPayloadSize(256 * 1024);
const enc = new TextEncoder();
const desc = (shape: number[], kind = 'act') => enc.encode(JSON.stringify({ kind, shape, meta: {} }));

describe('FramedTransport over memory channels', () => {
  it('round-trips tensors of several sizes bit-identically, in order, with metadata', async () => {
    const { a, b } = pair();
    const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 7];
    const got: { bytes: Uint8Array; meta: unknown; shape: number[] }[] = [];
    b.onTensor((t) => got.push(t));
    await Promise.all(
      sizes.map((n, i) => a.sendTensor({ kind: 'act', dtype: 'u8', shape: [n], data: patternBytes(i + 1, n), meta: { step: i, mb: 2 } })),
    );
    await expect.poll(() => got.length).toBe(sizes.length);
    sizes.forEach((n, i) => {
      expect(firstMismatch(i + 1, got[i].bytes, n)).toBe(-1);
      expect(got[i].meta).toEqual({ step: i, mb: 2 });
      expect(got[i].shape).toEqual([n]);
    });
    a.close();
  });

  it('keeps f32 values and shape', async () => {
    const { a, b } = pair();
    const data = new Float32Array([1.5, -2, Math.PI, Number.NaN, Infinity, 0]);
    const it = b.tensors();
    await a.sendTensor({ kind: 'grad', dtype: 'f32', shape: [2, 3], data });
    const { value } = await it.next();
    expect(value?.shape).toEqual([2, 3]);
    expect(new Float32Array(value!.bytes.buffer)).toEqual(data);
    a.close();
  });

  it('rejects a tensor whose data does not match dtype x shape before sending', async () => {
    const { a } = pair();
    await expect(a.sendTensor({ kind: 'act', dtype: 'f32', shape: [3], data: new Float32Array(4) })).rejects.toThrow(/needs 12 bytes/);
    a.close();
  });

  it('delivers and validates control messages; drops invalid ones', async () => {
    const { a, b, ra } = pair({ control: statusOnly });
    const got: unknown[] = [];
    const errors: ProtocolError[] = [];
    b.onProtocolError((e) => errors.push(e));
    a.sendControl({ type: 'status', state: 'ready', step: 3 });
    expect(() => a.sendControl({ type: 'status', state: '' })).toThrow(/invalid control/);
    ra.send(encodeControlFrame(enc.encode('{"type":"nope"}')));
    ra.send(encodeControlFrame(enc.encode('not json')));
    b.onControl((m) => got.push(m));
    await expect.poll(() => errors.length).toBe(2);
    expect(got).toEqual([{ type: 'status', state: 'ready', step: 3 }]);
    a.close();
  });

  it('measures a round trip and notices a clean close on the other side', async () => {
    const { a, b } = pair();
    expect(await a.ping()).toBeGreaterThanOrEqual(0);
    const closed = new Promise((r) => b.onClose(r));
    a.close();
    expect(await closed).toMatchObject({ reason: 'remote' });
  });

  it('declares a silent peer dead within deadAfterMs + interval and frees its partial message', async () => {
    const { a, b, ra, rb } = pair({ heartbeat: { intervalMs: 50, deadAfterMs: 300 } });
    const drops: PartialDrop[] = [];
    b.onDrop((d) => drops.push(d));
    // Two chunks of a three-chunk message, then the sender vanishes.
    const total = 3 * CHUNK;
    const data = patternBytes(9, total);
    for (const index of [0, 1]) {
      ra.send(
        encodeTensorChunk({
          msgId: 77,
          index,
          count: 3,
          chunkSize: CHUNK,
          totalBytes: total,
          dtype: 'u8',
          descriptor: index === 0 ? desc([total]) : null,
          payload: data.subarray(index * CHUNK, (index + 1) * CHUNK),
        }),
      );
    }
    await expect.poll(() => b.stats().pendingBytes).toBe(total);
    a['heartbeat'].stop(); // a stays "open" but silent, exactly like a frozen process
    ra.vanish();
    const t0 = performance.now();
    const info = await new Promise((r) => b.onClose(r));
    const dt = performance.now() - t0;
    expect(info).toMatchObject({ reason: 'dead' });
    expect(dt).toBeLessThan(300 + 50 + 100);
    expect(b.stats()).toMatchObject({ pendingBytes: 0, pendingMessages: 0 });
    expect(drops).toEqual([{ msgId: 77, reason: 'closed', receivedChunks: 2, chunkCount: 3, bytes: total }]);
    void rb;
  });
});

describe('reassembly rejects bad chunks and frees memory', () => {
  const total = 2 * CHUNK + 10;
  const data = patternBytes(3, total);
  const chunk = (over: Partial<Parameters<typeof encodeTensorChunk>[0]> & { index: number }) => {
    const index = over.index;
    return encodeTensorChunk({
      msgId: 5,
      count: 3,
      chunkSize: CHUNK,
      totalBytes: total,
      dtype: 'u8',
      descriptor: index === 0 ? desc([total]) : null,
      payload: data.subarray(index * CHUNK, Math.min(total, (index + 1) * CHUNK)),
      ...over,
    });
  };

  async function expectRejected(frames: Uint8Array[], reason: string) {
    const { a, b, ra } = pair();
    const errors: ProtocolError[] = [];
    const drops: PartialDrop[] = [];
    b.onProtocolError((e) => errors.push(e));
    b.onDrop((d) => drops.push(d));
    const got: unknown[] = [];
    b.onTensor((t) => got.push(t));
    for (const f of frames) ra.send(f);
    await expect.poll(() => errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatchObject({ kind: 'chunk', reason });
    expect(b.stats().pendingBytes).toBe(0);
    // The link survives one bad message and keeps working.
    await a.sendTensor({ kind: 'act', dtype: 'u8', shape: [4], data: new Uint8Array([1, 2, 3, 4]) });
    await expect.poll(() => got.length).toBe(1);
    a.close();
    return drops;
  }

  it('duplicate', async () => {
    const drops = await expectRejected([chunk({ index: 0 }), chunk({ index: 0 })], 'duplicate');
    expect(drops[0]).toMatchObject({ msgId: 5, reason: 'duplicate' });
  });
  it('out of range', () => expectRejected([chunk({ index: 0 }), chunk({ index: 3, payload: new Uint8Array(0) })], 'out-of-range'));
  it('count inconsistent with total', () => expectRejected([chunk({ index: 0, count: 9 })], 'out-of-range'));
  it('mismatched header', () => expectRejected([chunk({ index: 0 }), chunk({ index: 1, dtype: 'i8' })], 'mismatch'));
  it('wrong payload length', () => expectRejected([chunk({ index: 1, payload: new Uint8Array(5) })], 'mismatch'));
  it('oversized tensor', () => expectRejected([chunk({ index: 0, totalBytes: 2 ** 40, count: Math.ceil(2 ** 40 / CHUNK) })], 'oversized'));
  it('descriptor disagrees with length', () => expectRejected([chunk({ index: 0, descriptor: desc([7]) })], 'bad-descriptor'));
  it('descriptor not valid', () => expectRejected([chunk({ index: 0, descriptor: enc.encode('{"kind":"act","shape":"x"}') })], 'bad-descriptor'));

  it('gives up on a stalled message and frees it', async () => {
    const { a, b, ra } = pair({ reassembly: { stallTimeoutMs: 200 } });
    const drops: PartialDrop[] = [];
    b.onDrop((d) => drops.push(d));
    ra.send(chunk({ index: 0 }));
    await expect.poll(() => b.stats().pendingMessages).toBe(1);
    await expect.poll(() => drops.length, { timeout: 2000 }).toBe(1);
    expect(drops[0]).toMatchObject({ msgId: 5, reason: 'stalled', receivedChunks: 1 });
    expect(b.stats().pendingBytes).toBe(0);
    // A late chunk of the abandoned message is discarded without a new allocation.
    ra.send(chunk({ index: 1 }));
    await new Promise((r) => setTimeout(r, 20));
    expect(b.stats().pendingMessages).toBe(0);
    expect(b.isOpen).toBe(true);
    a.close();
  });

  it('descriptor bigger than the reserved space is refused at send time', async () => {
    const { a } = pair();
    const meta: Record<string, string> = {};
    for (let i = 0; i < 40; i++) meta[`k${i}`] = 'x'.repeat(200);
    expect(MAX_DESCRIPTOR_BYTES).toBe(4096);
    await expect(a.sendTensor({ kind: 'act', dtype: 'u8', shape: [1], data: new Uint8Array(1), meta })).rejects.toThrow(/descriptor/);
    a.close();
  });
});

describe('heartbeat and a blocked event loop', () => {
  it('does not declare a live peer dead because this side was busy', async () => {
    const { a, b } = pair({ heartbeat: { intervalMs: 50, deadAfterMs: 200 } });
    await a.ping();
    const until = performance.now() + 600; // block both ends' loops for 3x deadAfterMs
    while (performance.now() < until) {
      // busy
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(a.isOpen).toBe(true);
    expect(b.isOpen).toBe(true);
    a.close();
  });
});

describe('backpressure', () => {
  for (const events of [true, false]) {
    it(`keeps bufferedAmount under the high-water mark (${events ? 'bufferedamountlow event' : 'timer fallback only'})`, async () => {
      const backpressure = { highWaterMark: 512 * 1024, lowWaterMark: 256 * 1024, pollMs: 5 };
      const { a, b, ra } = pair({ backpressure });
      if (!events) {
        const emit = ra.events.emit.bind(ra.events);
        ra.events.emit = ((e: 'bufferedlow' | 'message' | 'close' | 'open', p: never) => {
          if (e !== 'bufferedlow') emit(e, p);
        }) as typeof ra.events.emit;
      }
      let peak = 0;
      const send = ra.send.bind(ra);
      ra.send = (bytes: Uint8Array) => {
        send(bytes);
        peak = Math.max(peak, ra.bufferedAmount);
      };
      const got = new Promise((r) => b.onTensor(r));
      const size = 4 * 1024 * 1024;
      await a.sendTensor({ kind: 'act', dtype: 'u8', shape: [size], data: patternBytes(1, size) });
      await got;
      expect(peak).toBeGreaterThan(backpressure.highWaterMark / 2);
      expect(peak).toBeLessThanOrEqual(backpressure.highWaterMark + 256 * 1024);
      a.close();
    });
  }
});
