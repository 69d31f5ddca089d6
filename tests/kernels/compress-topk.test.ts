// Top-k on the GPU (shaders/topk.wgsl) against a sorting reference, ties to the lower index, and error feedback
// (src/compress/error-feedback.ts): what is sent plus what is kept is exactly what there was to send.
import { describe, expect, it } from 'vitest';
import { createCodec, ErrorFeedbackEncoder, type RoundingKey } from '../../src/compress/codec';
import type { CodecSpec } from '../../src/compress/spec';
import { topkCount } from '../../src/compress/wire-format';
import { freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';
import { topkRef } from './compress-reference';

const KEY: RoundingKey = { seed: 1, step: 0, mb: 0, stream: 100 };

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Few distinct magnitudes, both signs and zeros: many ties at every threshold. */
function tiedInput(n: number, rand: () => number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rand() < 0.5 ? -1 : 1) * Math.floor(rand() * 9) * 0.25;
  return x;
}

describe('top-k codec', () => {
  for (const n of [1, 7, 300, 4099, 70_001]) {
    for (const fraction of [0.01, 0.1, 0.5, 1]) {
      it(`selects exactly the reference's k (ties by index) at n=${n}, fraction ${fraction}`, async () => {
        const seed = freshSeed();
        const rt = await gpuRuntime();
        const rand = rng(seed);
        const k = topkCount(fraction, n);
        for (const [what, x] of [
          ['gaussian', randn(n, rand, 2)],
          ['tied', tiedInput(n, rand)],
        ] as const) {
          const codec = createCodec(rt, { kind: 'topk', fraction });
          const src = rt.upload(x, [n], 'src');
          const out = rt.tensor([n], 'out');
          poison(rt, out);
          const payload = await codec.encode(rt, src, n, KEY);
          expect(payload.length).toBe(codec.payloadBytes(n));
          expect(payload.length).toBe(16 + 8 * k);
          const body = new Uint32Array(payload.slice(16).buffer);
          const want = topkRef(x, k);
          const got = Array.from(body.subarray(0, k));
          if (got.join() !== want.join()) {
            const diff = got.findIndex((v, j) => v !== want[j]);
            throw new Error(`${what} n=${n} k=${k} seed=${seed}: index ${diff} is ${got[diff]}, expected ${want[diff]}`);
          }
          const xb = bitsOf(x);
          for (let j = 0; j < k; j++) expect(body[k + j], `${what} value ${j} bits`).toBe(xb[want[j]]);
          codec.decode(rt, payload, out, n);
          const dec = await rt.read(out);
          const expected = new Float32Array(n);
          for (const i of want) expected[i] = x[i];
          expect(Buffer.from(dec.buffer).equals(Buffer.from(expected.buffer)), `${what} decode n=${n} seed=${seed}`).toBe(true);
          codec.roundTrip(rt, src, n, KEY);
          const rtd = await rt.read(src);
          expect(Buffer.from(rtd.buffer).equals(Buffer.from(dec.buffer)), `${what} roundTrip == decode(encode) n=${n} seed=${seed}`).toBe(true);
          rt.release(src);
          rt.release(out);
        }
      });
    }
  }

  it('is deterministic (same input, same bytes) and counts k = ceil(fraction * n) without float noise', async () => {
    expect(topkCount(0.1, 30)).toBe(3);
    expect(topkCount(0.01, 50)).toBe(1);
    expect(topkCount(0.001, 10)).toBe(1);
    expect(topkCount(0.3, 10)).toBe(3);
    expect(topkCount(0.25, 10)).toBe(3);
    expect(topkCount(1, 10)).toBe(10);
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const x = tiedInput(9999, rng(seed));
    const codec = createCodec(rt, { kind: 'topk', fraction: 0.05 });
    const src = rt.upload(x, [x.length], 'src');
    const a = await codec.encode(rt, src, x.length, KEY);
    const b = await codec.encode(rt, src, x.length, { ...KEY, step: 9 });
    expect(Buffer.from(a).equals(Buffer.from(b)), `seed=${seed}`).toBe(true);
    rt.release(src);
  });

  it('decodeAdd adds the sent values at their indices only', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const rand = rng(seed);
    const n = 777;
    const x = randn(n, rand, 3);
    const base = randn(n, rand, 1);
    const codec = createCodec(rt, { kind: 'topk', fraction: 0.1 });
    const src = rt.upload(x, [n], 'src');
    const payload = await codec.encode(rt, src, n, KEY);
    const acc = rt.upload(base, [n], 'acc');
    codec.decodeAdd(rt, payload, acc, n);
    const got = await rt.read(acc);
    const want = Float32Array.from(base);
    for (const i of topkRef(x, topkCount(0.1, n))) want[i] = Math.fround(base[i] + x[i]);
    expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `seed=${seed}`).toBe(true);
  });

  it('selects 1% of 1M values in milliseconds', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const n = 1 << 20;
    const src = rt.upload(randn(n, rng(seed), 1), [n], 'src');
    const codec = createCodec(rt, { kind: 'topk', fraction: 0.01 });
    await codec.encode(rt, src, n, KEY);
    const t0 = performance.now();
    await codec.encode(rt, src, n, KEY);
    const ms = performance.now() - t0;
    console.log(`[compress] top-k 1% of 1M floats: encode ${ms.toFixed(1)} ms`);
    expect(ms).toBeLessThan(3000);
    rt.release(src);
  });
});

describe('error feedback', () => {
  const specs: CodecSpec[] = [
    { kind: 'topk', fraction: 0.05 },
    { kind: 'int8', block: 64, rounding: 'nearest' },
    { kind: 'int4', block: 32, rounding: 'stochastic' },
  ];
  for (const spec of specs) {
    it(`${spec.kind}: err = (err_prev + x) - decode(payload) exactly, over several rounds`, async () => {
      const seed = freshSeed();
      const rt = await gpuRuntime();
      const rand = rng(seed);
      const n = 2051;
      const codec = createCodec(rt, spec);
      const ef = new ErrorFeedbackEncoder(rt, codec, n);
      const dec = rt.tensor([n], 'dec');
      let errPrev: Float32Array = new Float32Array(n);
      let sentTotal = 0;
      for (let round = 0; round < 4; round++) {
        const x = randn(n, rand, 1);
        const xt = rt.upload(x, [n], 'x');
        const payload = await ef.encode(xt, { ...KEY, step: round });
        poison(rt, dec);
        codec.decode(rt, payload, dec, n);
        const sent = await rt.read(dec);
        const err = await ef.readError();
        for (let i = 0; i < n; i++) {
          const acc = Math.fround(errPrev[i] + x[i]);
          const want = Math.fround(acc - sent[i]);
          if (!Object.is(err[i], want)) throw new Error(`${spec.kind} round ${round} element ${i}: err ${err[i]}, expected ${want} seed=${seed}`);
          // Conservation: for top-k at most one of sent/err is nonzero, so sent + err == err_prev + x exactly.
          if (spec.kind === 'topk' && sent[i] + err[i] !== acc) throw new Error(`top-k mass not conserved at ${i} seed=${seed}`);
          if (sent[i] !== 0) sentTotal++;
        }
        errPrev = err;
        rt.release(xt);
      }
      expect(sentTotal, 'something was sent').toBeGreaterThan(0);
      if (spec.kind === 'topk') expect(sentTotal).toBeLessThanOrEqual(4 * topkCount(0.05, n));
      rt.release(dec);
      ef.release();
    });
  }

  it('moves its state (readError / writeError), resets, and keeps it when encode refuses', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const rand = rng(seed);
    const n = 500;
    const codec = createCodec(rt, { kind: 'topk', fraction: 0.1 });
    const a = new ErrorFeedbackEncoder(rt, codec, n);
    const b = new ErrorFeedbackEncoder(rt, codec, n);
    const x = rt.upload(randn(n, rand, 1), [n], 'x');
    await a.encode(x, KEY);
    const state = await a.readError();
    b.writeError(state);
    const x2 = rt.upload(randn(n, rand, 1), [n], 'x2');
    const pa = await a.encode(x2, KEY);
    const pb = await b.encode(x2, KEY);
    expect(Buffer.from(pa).equals(Buffer.from(pb)), `a joiner with the state sends the same bytes seed=${seed}`).toBe(true);
    // A NaN input is refused and err stays what it was.
    const before = await a.readError();
    const bad = randn(n, rand, 1);
    bad[17] = NaN;
    const xb = rt.upload(bad, [n], 'bad');
    await expect(a.encode(xb, KEY)).rejects.toThrow(/^topk \(fraction 0\.1\) codec: input holds a non-finite value \(NaN at index 17\)/);
    expect(Buffer.from((await a.readError()).buffer).equals(Buffer.from(before.buffer))).toBe(true);
    a.reset();
    expect((await a.readError()).every((v) => v === 0)).toBe(true);
    expect(() => b.writeError(new Float32Array(n - 1))).toThrow(/writeError got 499 values, expected 500/);
    expect(() => b.writeError(new Float32Array(n).fill(Infinity))).toThrow(/writeError value 0 is Infinity/);
    for (const t of [x, x2, xb]) rt.release(t);
    a.release();
    b.release();
  });
});
