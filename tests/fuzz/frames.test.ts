// Fuzz: tensor frames (src/net/framing.ts decodeFrame, src/net/reassembler.ts). 12,000 seeded inputs, each a valid
// multi-chunk message with one chunk mutated (or replaced by random bytes), fed through decodeFrame and one long-lived
// Reassembler: a bad frame is a FrameError, a bad chunk a rejection, nothing throws anything else, every tensor that
// comes out has the bytes its dtype and shape say, and a valid message sent after every 200 inputs still arrives intact.
import { describe, expect, it } from 'vitest';
import { expectedByteLength, type DType } from '../../src/net/dtype';
import { decodeFrame, encodeTensorChunk, FrameError, MIN_CHUNK_SIZE, TENSOR_HEADER_BYTES } from '../../src/net/framing';
import { Reassembler, type ChunkRejection, type PartialDrop } from '../../src/net/reassembler';
import type { IncomingTensor } from '../../src/net/tensor';
import { rng, testSeed } from '../support/random';
import { mutate, randomBytes } from './mutate';

const INPUTS = 12_000;
const CHUNK = MIN_CHUNK_SIZE;

function chunksOf(msgId: number, dtype: DType, shape: number[], data: Uint8Array, meta: Record<string, number | string>): Uint8Array[] {
  const desc = new TextEncoder().encode(JSON.stringify({ kind: 'act', shape, meta }));
  const count = Math.max(1, Math.ceil(data.byteLength / CHUNK));
  return Array.from({ length: count }, (_, index) =>
    encodeTensorChunk({
      msgId,
      index,
      count,
      chunkSize: CHUNK,
      totalBytes: data.byteLength,
      dtype,
      descriptor: index === 0 ? desc : null,
      payload: data.subarray(index * CHUNK, Math.min((index + 1) * CHUNK, data.byteLength)),
    }),
  );
}

describe('fuzz: tensor frames', () => {
  it(`${INPUTS} mutated and random frames: refused cleanly, valid messages still arrive`, () => {
    const seed = testSeed('fuzz: tensor frames');
    const rand = rng(seed);
    let clock = 0;
    const got: IncomingTensor[] = [];
    const rejected: ChunkRejection[] = [];
    const dropped: PartialDrop[] = [];
    const re = new Reassembler(
      { maxMessageSize: 16 * 1024, maxTensorBytes: 1 << 20, maxPendingBytes: 8 << 20, maxPendingMessages: 64, stallTimeoutMs: 1000 },
      { tensor: (t) => got.push(t), rejected: (r) => rejected.push(r), dropped: (d) => dropped.push(d) },
      () => clock,
    );
    let frameErrors = 0;
    let crashes = 0;
    const crash = (what: string, e: unknown) => {
      if (crashes++ < 5) console.error(`crash on ${what}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    };
    const feed = (bytes: Uint8Array) => {
      let f;
      try {
        f = decodeFrame(bytes);
      } catch (e) {
        if (e instanceof FrameError && e.message.length > 0) frameErrors++;
        else crash('decodeFrame', e);
        return;
      }
      if (f.type !== 'tensor') return;
      try {
        re.accept(f, bytes.byteLength);
      } catch (e) {
        crash('accept', e);
      }
    };
    const t0 = performance.now();
    for (let i = 0; i < INPUTS; i++) {
      const msgId = i;
      const n = 1 + Math.floor(rand() * 700); // f32: up to 3 chunks
      const data = new Uint8Array(n * 4).map(() => Math.floor(rand() * 256));
      const chunks = chunksOf(msgId, 'f32', [n], data, { step: i, mb: 0 });
      const bad = Math.floor(rand() * chunks.length);
      chunks[bad] = rand() < 0.1 ? randomBytes(rand, 2 * CHUNK) : mutate(chunks[bad], rand, [[0, TENSOR_HEADER_BYTES + 64]]);
      // Sometimes out of order or a chunk twice.
      if (rand() < 0.2) chunks.reverse();
      if (rand() < 0.1) chunks.push(chunks[0]);
      const before = got.length;
      for (const c of chunks) feed(c);
      for (const t of got.slice(before)) {
        const want = expectedByteLength(t.dtype, t.shape);
        expect(t.bytes.byteLength, `tensor ${t.msgId}`).toBe(want);
      }
      if (i % 200 === 199) {
        clock += 2000;
        re.sweep(); // stalled partials of mutated messages go
        const id = 0x40000000 + i;
        const payload = new Float32Array(600).map(() => rand());
        const bytes = new Uint8Array(payload.buffer);
        const k = got.length;
        for (const c of chunksOf(id, 'f32', [600], bytes, { check: i })) feed(c);
        expect(got.length, `valid message after input ${i}`).toBe(k + 1);
        expect(got[k].msgId).toBe(id);
        expect(Buffer.compare(Buffer.from(got[k].bytes), Buffer.from(bytes))).toBe(0);
      }
    }
    const ms = performance.now() - t0;
    re.close();
    expect(crashes).toBe(0);
    // The mutations reach every layer: header errors, chunk rejections, and some tensors still whole.
    expect(frameErrors).toBeGreaterThan(500);
    expect(rejected.length).toBeGreaterThan(1000);
    expect(new Set(rejected.map((r) => r.reason)).size).toBeGreaterThanOrEqual(4);
    console.log(
      `fuzz frames: ${INPUTS} inputs in ${ms.toFixed(0)} ms; ${frameErrors} FrameErrors, ${rejected.length} rejections ` +
        `(${[...new Set(rejected.map((r) => r.reason))].join(', ')}), ${dropped.length} drops, ${got.length} tensors delivered`,
    );
  }, 60_000);
});
