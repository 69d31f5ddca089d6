// Every way a codec payload can be impossible is refused on the host with a CodecError naming the codec and the
// problem, before anything reaches the GPU (the output is left as it was); encoders refuse non-finite inputs.
import { describe, expect, it } from 'vitest';
import { CodecError, createCodec, type GpuCodec, type RoundingKey } from '../../src/compress/codec';
import type { CodecSpec } from '../../src/compress/spec';
import type { Runtime } from '../../src/gpu/runtime';
import { freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';

const KEY: RoundingKey = { seed: 3, step: 1, mb: 0, stream: 0 };
const INT8: CodecSpec = { kind: 'int8', block: 64, rounding: 'nearest' };
const INT4: CodecSpec = { kind: 'int4', block: 64, rounding: 'nearest' };

async function encoded(rt: Runtime, spec: CodecSpec, x: Float32Array): Promise<Uint8Array> {
  const src = rt.upload(x, [x.length], 'src');
  const payload = await createCodec(rt, spec).encode(rt, src, x.length, KEY);
  rt.release(src);
  return payload;
}

function edit(payload: Uint8Array, f: (dv: DataView, bytes: Uint8Array) => void): Uint8Array {
  const copy = payload.slice();
  f(new DataView(copy.buffer), copy);
  return copy;
}

/** decode must throw a CodecError matching `message` and leave `out` untouched (still NaN). */
async function expectRefused(rt: Runtime, codec: GpuCodec, payload: Uint8Array, n: number, message: RegExp): Promise<void> {
  const out = rt.tensor([n], 'out');
  poison(rt, out);
  let caught: unknown;
  try {
    codec.decode(rt, payload, out, n);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a refusal matching ${message}`).toBeInstanceOf(CodecError);
  const err = caught as CodecError;
  expect(err.message).toMatch(message);
  expect(err.codec).toBe(codec.spec.kind);
  expect(err.message).toBe(`${err.message.slice(0, err.message.indexOf(' codec: '))} codec: ${err.problem}`);
  expect((await rt.read(out)).every(Number.isNaN), 'out untouched').toBe(true);
  rt.release(out);
}

describe('decoder refusals', () => {
  it('int8: header, length, scales, codes', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const n = 200; // 4 blocks; scales at bytes 16..32, codes at 32..232
    const p = await encoded(rt, INT8, randn(n, rng(seed), 2));
    const codec = createCodec(rt, INT8);
    const name = /^int8 \(block 64, nearest\) codec: /;
    expect(p.length).toBe(232);
    const cases: [Uint8Array, RegExp][] = [
      [p.slice(0, 10), /payload is 10 bytes, shorter than the 16-byte header/],
      [p.slice(0, 228), /payload is 228 bytes, expected 232 for n=200/],
      [Uint8Array.from([...p, 0, 0, 0, 0]), /payload is 236 bytes, expected 232 for n=200/],
      [edit(p, (dv) => dv.setUint32(0, 0xdeadbeef, true)), /bad magic 0xdeadbeef/],
      [edit(p, (dv) => dv.setUint8(4, 2)), /wire format version 2, this peer reads version 1/],
      [edit(p, (dv) => dv.setUint8(5, 4)), /payload is int4, expected int8/],
      [edit(p, (dv) => dv.setUint8(5, 9)), /payload is unknown kind 9, expected int8/],
      [edit(p, (dv) => dv.setUint8(6, 1)), /rounding code 1, expected 0/],
      [edit(p, (dv) => dv.setUint8(7, 1)), /reserved header byte is 1, expected 0/],
      [edit(p, (dv) => dv.setUint32(8, 199, true)), /payload holds n=199 values, expected 200/],
      [edit(p, (dv) => dv.setUint32(12, 32, true)), /block 32 in the header, expected 64/],
      [edit(p, (dv) => dv.setFloat32(16 + 8, NaN, true)), /scale of block 2 is NaN \(not finite\)/],
      [edit(p, (dv) => dv.setFloat32(16 + 12, -Infinity, true)), /scale of block 3 is -Infinity \(not finite\)/],
      [edit(p, (dv) => dv.setFloat32(16 + 4, -0.01, true)), /scale of block 1 is negative/],
      [edit(p, (dv) => dv.setFloat32(16, -0, true)), /scale of block 0 is negative \(0\)/],
      [edit(p, (dv) => dv.setFloat32(16, 1e-40, true)), /scale of block 0 is subnormal/],
      [edit(p, (dv) => dv.setFloat32(16, 1e37, true)), /scale of block 0 is 9\.99.*e\+36, larger than any finite input gives/],
      [edit(p, (dv) => dv.setFloat32(16 + 12, 0, true)), /block 3 has scale 0 but nonzero code -?\d+ at 19\d/],
      [edit(p, (_, b) => (b[32 + 5] = 0x80)), /code 5 is -128, outside \[-127, 127\]/],
    ];
    for (const [payload, message] of cases) {
      await expectRefused(rt, codec, payload, n, message);
      expect(() => codec.decode(rt, payload, rt.tensor([n], 'o'), n)).toThrow(name);
    }
    // Called with another n than the payload's.
    await expectRefused(rt, codec, p, 201, /payload holds n=200 values, expected 201/);
    // Nothing else broke: the valid payload still decodes.
    const out = rt.tensor([n], 'out');
    codec.decode(rt, p, out, n);
    expect((await rt.read(out)).every(Number.isFinite)).toBe(true);
  });

  it('int8 / int4: padding codes after n, and int4 -8', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const rand = rng(seed);
    const p8 = await encoded(rt, INT8, randn(199, rand, 1)); // 4 scales, 199 code bytes + 1 padding byte
    await expectRefused(
      rt,
      createCodec(rt, INT8),
      edit(p8, (_, b) => (b[32 + 199] = 1)),
      199,
      /padding code 199 after the last value is not 0/,
    );
    const n = 201; // 4 scales (bytes 16..32), 101 code bytes of 26 words: nibbles 201..207 are padding
    const p4 = await encoded(rt, INT4, randn(n, rand, 1));
    const int4 = createCodec(rt, INT4);
    await expectRefused(
      rt,
      int4,
      edit(p4, (_, b) => (b[32 + 4] = (b[32 + 4] & 0x0f) | 0x80)),
      n,
      /^int4 \(block 64, nearest\) codec: code 9 is -8, outside \[-7, 7\]/,
    );
    await expectRefused(
      rt,
      int4,
      edit(p4, (_, b) => (b[32 + 100] = (b[32 + 100] & 0x0f) | 0x10)),
      n,
      /padding code 201 after the last value is not 0/,
    );
    await expectRefused(
      rt,
      int4,
      edit(p4, (_, b) => (b[32 + 101] = 0x20)),
      n,
      /padding code 203 after the last value is not 0/,
    );
    await expectRefused(
      rt,
      int4,
      edit(p4, (dv) => dv.setFloat32(16 + 4, 5e37, true)),
      n,
      /scale of block 1 is .*larger than any finite input gives/,
    );
  });

  it('fp16 and fp32: header, length, padding', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const x = randn(5, rng(seed), 1);
    const p16 = await encoded(rt, { kind: 'fp16' }, x);
    const fp16 = createCodec(rt, { kind: 'fp16' });
    await expectRefused(
      rt,
      fp16,
      edit(p16, (_, b) => (b[16 + 10] = 1)),
      5,
      /^fp16 codec: padding half after the last value is not 0/,
    );
    await expectRefused(rt, fp16, p16.slice(0, 24), 5, /^fp16 codec: payload is 24 bytes, expected 28 for n=5/);
    await expectRefused(
      rt,
      fp16,
      edit(p16, (dv) => dv.setUint32(12, 1, true)),
      5,
      /^fp16 codec: header parameter 1 in the header, expected 0/,
    );
    const p32 = await encoded(rt, { kind: 'fp32' }, x);
    const fp32 = createCodec(rt, { kind: 'fp32' });
    await expectRefused(rt, fp32, p32, 4, /^fp32 codec: payload holds n=5 values, expected 4/);
    await expectRefused(rt, fp32, p16, 5, /^fp32 codec: payload is fp16, expected fp32/);
  });

  it('top-k: k, indices out of range or not increasing, non-finite values', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const spec: CodecSpec = { kind: 'topk', fraction: 0.1 };
    const n = 100; // k = 10: indices at bytes 16..56, values at 56..96
    const p = await encoded(rt, spec, randn(n, rng(seed), 1));
    const codec = createCodec(rt, spec);
    const idx = (j: number) => new DataView(p.buffer).getUint32(16 + 4 * j, true);
    const cases: [Uint8Array, RegExp][] = [
      [edit(p, (dv) => dv.setUint32(12, 11, true)), /k 11 in the header, expected 10/],
      [p.slice(0, 88), /payload is 88 bytes, expected 96 for n=100/],
      [edit(p, (dv) => dv.setUint32(16 + 4 * 9, 100, true)), /index 9 is 100, out of range for n=100/],
      [edit(p, (dv) => dv.setUint32(16 + 4 * 9, 0xffffffff, true)), /index 9 is 4294967295, out of range for n=100/],
      [edit(p, (dv) => dv.setUint32(16 + 16, idx(3), true)), new RegExp(`indices not strictly increasing: index 4 is ${idx(3)} after ${idx(3)}`)],
      [edit(p, (dv) => dv.setUint32(16, idx(1) + 1, true)), new RegExp(`indices not strictly increasing: index 1 is ${idx(1)} after ${idx(1) + 1}`)],
      [edit(p, (dv) => dv.setFloat32(56 + 8, NaN, true)), new RegExp(`value 2 \\(index ${idx(2)}\\) is NaN \\(not finite\\)`)],
      [edit(p, (dv) => dv.setFloat32(56 + 36, Infinity, true)), new RegExp(`value 9 \\(index ${idx(9)}\\) is Infinity \\(not finite\\)`)],
    ];
    for (const [payload, message] of cases)
      await expectRefused(rt, codec, payload, n, new RegExp(`^topk \\(fraction 0\\.1\\) codec: ${message.source}`));
  });

  it('random corruption of a valid payload is either refused with a CodecError or decodes to finite values', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const rand = rng(seed);
    const n = 150;
    for (const spec of [INT8, INT4, { kind: 'topk', fraction: 0.2 }] as CodecSpec[]) {
      const p = await encoded(rt, spec, randn(n, rand, 1));
      const codec = createCodec(rt, spec);
      const out = rt.tensor([n], 'out');
      let refused = 0;
      for (let trial = 0; trial < 60; trial++) {
        const bad = p.slice();
        const flips = 1 + Math.floor(rand() * 3);
        for (let f = 0; f < flips; f++) bad[Math.floor(rand() * bad.length)] ^= 1 << Math.floor(rand() * 8);
        try {
          codec.decode(rt, bad, out, n);
        } catch (e) {
          if (!(e instanceof CodecError)) throw new Error(`${spec.kind} trial ${trial} seed=${seed}: ${String(e)}`, { cause: e });
          refused++;
          continue;
        }
        const got = await rt.read(out, n);
        expect(got.every(Number.isFinite), `${spec.kind} trial ${trial} decoded a non-finite value seed=${seed}`).toBe(true);
      }
      expect(refused, `${spec.kind}: some corruptions were refused seed=${seed}`).toBeGreaterThan(0);
      rt.release(out);
    }
  });
});

describe('encoder refusals', () => {
  it('int8 / int4 / top-k refuse a non-finite input, naming where; the round trip turns its block into NaN', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const n = 300;
    const x = randn(n, rng(seed), 1);
    x[70] = NaN;
    x[250] = -Infinity;
    const src = rt.upload(x, [n], 'src');
    await expect(createCodec(rt, INT8).encode(rt, src, n, KEY)).rejects.toThrow(
      /^int8 \(block 64, nearest\) codec: input holds a non-finite value in block 1 \(elements 64\.\.127\); refusing to encode it$/,
    );
    await expect(createCodec(rt, { kind: 'int4', block: 256, rounding: 'stochastic' }).encode(rt, src, n, KEY)).rejects.toThrow(
      /^int4 \(block 256, stochastic\) codec: input holds a non-finite value in block 0 \(elements 0\.\.255\)/,
    );
    await expect(createCodec(rt, { kind: 'topk', fraction: 0.5 }).encode(rt, src, n, KEY)).rejects.toThrow(
      /^topk \(fraction 0\.5\) codec: input holds a non-finite value/,
    );
    createCodec(rt, INT8).roundTrip(rt, src, n, KEY);
    const rtd = await rt.read(src);
    for (let i = 0; i < n; i++) {
      const poisoned = (i >= 64 && i < 128) || (i >= 192 && i < 256);
      expect(Number.isNaN(rtd[i]), `element ${i} seed=${seed}`).toBe(poisoned);
    }
    rt.release(src);
  });

  it('refuses a bad n or rounding key, naming the codec', async () => {
    const rt = await gpuRuntime();
    const codec = createCodec(rt, INT8);
    const t = rt.tensor([10], 't');
    expect(() => codec.payloadBytes(0)).toThrow(/int8 \(block 64, nearest\) codec: n must be an integer in \[1, 1073741824\], got 0/);
    expect(() => codec.roundTrip(rt, t, 11, KEY)).toThrow(/int8 \(block 64, nearest\) codec: t t holds 10 elements, needs 11/);
    expect(() => codec.roundTrip(rt, t, 10, { ...KEY, step: -1 })).toThrow(/rounding key step must be an integer in \[0, 2\^32\), got -1/);
    expect(() => codec.roundTrip(rt, t, 10, { ...KEY, mb: 0.5 })).toThrow(/rounding key mb must be an integer/);
  });
});
