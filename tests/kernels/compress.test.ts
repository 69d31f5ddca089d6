// Dense wire codecs on the GPU (src/compress, shaders/quantize.wgsl) against float64 references of the same
// quantisers: fp16 bit for bit, int8/int4 scales bit for bit and codes exactly (except where the GPU's f32 division
// may fall on the other side of a rounding boundary, then within the bound), at awkward sizes, outputs poisoned.
import { describe, expect, it } from 'vitest';
import { createCodec, type GpuCodec, type RoundingKey } from '../../src/compress/codec';
import { keyHash } from '../../src/compress/rounding-key';
import type { CodecSpec } from '../../src/compress/spec';
import { bitsPerValue, payloadBytes } from '../../src/compress/wire-format';
import type { Runtime } from '../../src/gpu/runtime';
import { freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';
import { blockRef, f16Ref } from './compress-reference';

const KEY: RoundingKey = { seed: 7, step: 3, mb: 1, stream: 2 };

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Fails naming the first element whose bits differ. */
function expectSameBits(what: string, actual: Float32Array, expected: Float32Array): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const a = bits(actual);
  const e = bits(expected);
  for (let i = 0; i < e.length; i++) {
    if (a[i] !== e[i])
      throw new Error(`${what}: element ${i} is ${actual[i]} (0x${a[i].toString(16)}), expected ${expected[i]} (0x${e[i].toString(16)})`);
  }
}

interface Run {
  payload: Uint8Array;
  decoded: Float32Array;
  roundTripped: Float32Array;
}

/** encode -> decode into a poisoned tensor, and the in-place round trip of the same input. */
async function run(rt: Runtime, codec: GpuCodec, x: Float32Array, key: RoundingKey = KEY): Promise<Run> {
  const n = x.length;
  const src = rt.upload(x, [n], 'src');
  const out = rt.tensor([n], 'out');
  poison(rt, out);
  const payload = await codec.encode(rt, src, n, key);
  codec.decode(rt, payload, out, n);
  const decoded = await rt.read(out, n);
  codec.roundTrip(rt, src, n, key);
  const roundTripped = await rt.read(src, n);
  rt.release(src);
  rt.release(out);
  return { payload, decoded, roundTripped };
}

/** The payload's scales and codes, parsed from the documented layout. */
function parseBlockwise(payload: Uint8Array, n: number, block: number, bitsPerCode: 8 | 4): { scales: Float32Array; codes: Int32Array } {
  const nb = Math.ceil(n / block);
  const copy = payload.slice();
  const scales = new Float32Array(copy.buffer, 16, nb);
  const codes = new Int32Array(n);
  const bytes = new Uint8Array(copy.buffer, 16 + 4 * nb);
  for (let i = 0; i < n; i++) {
    if (bitsPerCode === 8) codes[i] = (bytes[i] << 24) >> 24;
    else codes[i] = (((bytes[i >> 1] >> (4 * (i & 1))) & 0xf) << 28) >> 28;
  }
  return { scales, codes };
}

describe('fp16 codec', () => {
  const special = [
    0,
    -0,
    1,
    -1,
    0.1,
    65504,
    -65504,
    65519.99,
    65520,
    -65520,
    1e5,
    -1e9,
    Infinity,
    -Infinity,
    2 ** -14,
    2 ** -24,
    -(2 ** -24),
    2 ** -25,
    2 ** -25 * 1.0001,
    -(2 ** -25),
    1.5 * 2 ** -24,
    2.5 * 2 ** -24,
    3 * 2 ** -26,
    1e-30,
    -1e-40,
    1.4e-45,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    2049,
    2051,
    4097,
    3.4e38,
    (1 - 2 ** -11) * 2 ** -14,
    2 ** -14 - 2 ** -25,
  ];
  for (const n of [1, 2, 7, 255, special.length, 4099]) {
    it(`round trips bit for bit like a real cast at n=${n}`, async () => {
      const seed = freshSeed();
      const rt = await gpuRuntime();
      const rand = rng(seed);
      const x = randn(n, rand, 100);
      for (let i = 0; i < Math.min(n, special.length); i++) x[i] = special[(i * 7) % special.length];
      const codec = createCodec(rt, { kind: 'fp16' });
      const r = await run(rt, codec, x);
      expect(r.payload.length, `payloadBytes seed=${seed}`).toBe(codec.payloadBytes(n));
      const want = Float32Array.from(x, f16Ref);
      expectSameBits(`fp16 decode(encode) n=${n} seed=${seed}`, r.decoded, want);
      expectSameBits(`fp16 roundTrip n=${n} seed=${seed}`, r.roundTripped, r.decoded);
    });
  }

  it('keeps NaN a NaN (with its sign) like a cast', async () => {
    const rt = await gpuRuntime();
    const x = new Float32Array([NaN, -NaN, 1]);
    bits(x)[1] = 0xffc00001;
    const r = await run(rt, createCodec(rt, { kind: 'fp16' }), x);
    expect(Number.isNaN(r.decoded[0]) && Number.isNaN(r.decoded[1])).toBe(true);
    expect(bits(r.decoded)[1] >>> 31).toBe(1);
    expect(r.decoded[2]).toBe(1);
    expectSameBits('fp16 NaN roundTrip', r.roundTripped, r.decoded);
  });
});

describe('fp32 codec', () => {
  it('carries the exact bits', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const x = randn(1001, rng(seed), 5);
    const codec = createCodec(rt, { kind: 'fp32' });
    const r = await run(rt, codec, x);
    expect(r.payload.length).toBe(16 + 4 * 1001);
    expectSameBits(`fp32 seed=${seed}`, r.decoded, x);
    expectSameBits(`fp32 roundTrip seed=${seed}`, r.roundTripped, x);
  });
});

const blockSpecs: Extract<CodecSpec, { kind: 'int8' | 'int4' }>[] = [
  { kind: 'int8', block: 64, rounding: 'nearest' },
  { kind: 'int8', block: 64, rounding: 'stochastic' },
  { kind: 'int4', block: 64, rounding: 'nearest' },
  { kind: 'int4', block: 64, rounding: 'stochastic' },
  { kind: 'int8', block: 13, rounding: 'nearest' },
  { kind: 'int4', block: 13, rounding: 'stochastic' },
  { kind: 'int4', block: 4096, rounding: 'nearest' },
];

describe('blockwise int8 / int4 codecs', () => {
  for (const spec of blockSpecs) {
    const qmax = spec.kind === 'int8' ? 127 : 7;
    const bitsPerCode = spec.kind === 'int8' ? 8 : 4;
    const name = `${spec.kind} block ${spec.block} ${spec.rounding}`;
    for (const n of [1, 7, spec.block - 1, spec.block, spec.block + 1, 3 * spec.block + 5, 4099]) {
      it(`${name}: scales and codes match the float64 reference, error within the bound, at n=${n}`, async () => {
        const seed = freshSeed();
        const rt = await gpuRuntime();
        const rand = rng(seed);
        const x = randn(n, rand, 3);
        // A zero block, a block with one nonzero value, and a block with a wide range.
        if (n > 2 * spec.block) x.fill(0, spec.block, 2 * spec.block);
        if (n > 3 * spec.block) x.fill(0, 2 * spec.block + 1, 3 * spec.block).fill(-1e-3, 2 * spec.block, 2 * spec.block + 1);
        if (n > 5) x[5] = 1e4;
        const codec = createCodec(rt, spec);
        const r = await run(rt, codec, x);
        expect(r.payload.length, `payloadBytes ${name} seed=${seed}`).toBe(codec.payloadBytes(n));
        const ref = blockRef(x, spec.block, qmax, spec.rounding === 'stochastic', keyHash(KEY));
        const got = parseBlockwise(r.payload, n, spec.block, bitsPerCode);
        expectSameBits(`${name} scales n=${n} seed=${seed}`, got.scales, ref.scales);
        let ambiguous = 0;
        for (let i = 0; i < n; i++) {
          const scale = ref.scales[Math.floor(i / spec.block)];
          if (ref.ambiguous[i]) {
            ambiguous++;
            expect(Math.abs(got.codes[i] - ref.codes[i]), `${name} code ${i} seed=${seed}`).toBeLessThanOrEqual(1);
          } else if (got.codes[i] !== ref.codes[i]) {
            throw new Error(`${name} n=${n} seed=${seed}: code ${i} is ${got.codes[i]}, expected ${ref.codes[i]} (x=${x[i]}, scale=${scale})`);
          }
          // Decoded value: the code times the scale, and within the rounding's error bound of x.
          expect(r.decoded[i], `${name} value ${i} seed=${seed}`).toBe(Math.fround(got.codes[i] * scale));
          const bound = scale * (spec.rounding === 'nearest' ? 0.5 : 1) * (1 + 1e-6);
          if (!(Math.abs(r.decoded[i] - x[i]) <= bound)) throw new Error(`${name} n=${n} seed=${seed}: |${r.decoded[i]} - ${x[i]}| > ${bound}`);
        }
        expect(ambiguous, `${name}: ambiguous codes seed=${seed}`).toBeLessThanOrEqual(Math.max(2, n / 1000));
        if (n > 2 * spec.block) for (let i = spec.block; i < 2 * spec.block; i++) expect(Object.is(r.decoded[i], 0), `zero block ${i}`).toBe(true);
        expectSameBits(`${name} roundTrip == decode(encode) n=${n} seed=${seed}`, r.roundTripped, r.decoded);
      });
    }
  }

  it('rounds half to even (nearest)', async () => {
    const rt = await gpuRuntime();
    for (const [kind, qmax] of [
      ['int8', 127],
      ['int4', 7],
    ] as const) {
      // absmax = qmax gives scale exactly 1 (f32(qmax * f32(1/qmax)) == 1), so x / scale is exactly x.
      const x = new Float32Array([qmax, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 0.49999997, -qmax]);
      const r = await run(rt, createCodec(rt, { kind, block: 16, rounding: 'nearest' }), x);
      expect(Array.from(r.decoded), kind).toEqual([qmax, 0, 2, 2, 0, -2, -2, 4, 0, -qmax]);
    }
  });

  it('gives the same bytes for the same key, other stochastic bits for another key, and nearest ignores the key', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const x = randn(4099, rng(seed), 2);
    for (const spec of blockSpecs.slice(0, 4)) {
      const codec = createCodec(rt, spec);
      const a = (await run(rt, codec, x, KEY)).payload;
      const b = (await run(rt, codec, x, { ...KEY })).payload;
      expect(Buffer.from(a).equals(Buffer.from(b)), `${spec.kind} ${spec.rounding} same key seed=${seed}`).toBe(true);
      for (const other of [
        { ...KEY, step: 4 },
        { ...KEY, mb: 2 },
        { ...KEY, stream: 3 },
        { ...KEY, seed: 8 },
      ]) {
        const c = (await run(rt, codec, x, other)).payload;
        const same = Buffer.from(a).equals(Buffer.from(c));
        expect(same, `${spec.kind} ${spec.rounding} key ${JSON.stringify(other)} seed=${seed}`).toBe(spec.rounding === 'nearest');
      }
    }
  });

  it('stochastic rounding is unbiased (and nearest is not, on the same inputs)', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const rand = rng(seed);
    const n = 4096;
    // Block 64 with x[0] = 127 in every block: scale 1, so x's fractional parts are what gets rounded.
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = i % 64 === 0 ? 127 : Math.fround(Math.floor(rand() * 200) - 100 + 0.1 + 0.3 * rand());
    const R = 48;
    const sum = { stochastic: 0, nearest: 0 };
    for (const rounding of ['stochastic', 'nearest'] as const) {
      const codec = createCodec(rt, { kind: 'int8', block: 64, rounding });
      for (let r = 0; r < R; r++) {
        const { decoded } = await run(rt, codec, x, { ...KEY, step: r });
        for (let i = 0; i < n; i++) sum[rounding] += decoded[i] - x[i];
      }
    }
    // Per sample |error| < 1 with variance <= 1/4: the mean of n*R samples has sigma <= 0.5 / sqrt(n*R) ~ 0.0011.
    const mean = sum.stochastic / (n * R);
    expect(Math.abs(mean), `stochastic mean error ${mean} seed=${seed}`).toBeLessThan(0.006);
    // Nearest rounds fractions 0.1 .. 0.4 down: a mean error near -0.25 (over the non-127 elements).
    expect(sum.nearest / (n * R), `nearest mean error seed=${seed}`).toBeLessThan(-0.2);
  });

  it('decodeAdd adds the decoded values into the accumulator', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const rand = rng(seed);
    const n = 1237;
    const x = randn(n, rand, 2);
    const base = randn(n, rand, 1);
    for (const spec of [{ kind: 'fp32' }, { kind: 'fp16' }, blockSpecs[0], blockSpecs[3]] as CodecSpec[]) {
      const codec = createCodec(rt, spec);
      const { payload, decoded } = await run(rt, codec, x);
      const acc = rt.upload(base, [n], 'acc');
      codec.decodeAdd(rt, payload, acc, n);
      const got = await rt.read(acc);
      expectSameBits(
        `${spec.kind} decodeAdd seed=${seed}`,
        got,
        Float32Array.from(base, (b, i) => b + decoded[i]),
      );
      rt.release(acc);
    }
  });

  it('reads from and writes into views, touching only their n elements', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const n = 301;
    const x = randn(n, rng(seed), 2);
    const off = rt.viewAlignment * 3;
    for (const spec of [{ kind: 'fp32' }, { kind: 'fp16' }, blockSpecs[1], blockSpecs[2]] as CodecSpec[]) {
      const codec = createCodec(rt, spec);
      const plain = await run(rt, codec, x);
      const big = rt.tensor([off + n + 100], 'big');
      poison(rt, big);
      rt.write(big, x, off);
      const payload = await codec.encode(rt, rt.view(big, off, [n], 'src view'), n, KEY);
      expect(Buffer.from(payload).equals(Buffer.from(plain.payload)), `${spec.kind} encode from a view`).toBe(true);
      poison(rt, big);
      codec.decode(rt, payload, rt.view(big, off, [n], 'out view'), n);
      const all = await rt.read(big);
      expectSameBits(`${spec.kind} decode into a view seed=${seed}`, all.slice(off, off + n), plain.decoded);
      expect(all.slice(0, off).every(Number.isNaN) && all.slice(off + n).every(Number.isNaN), `${spec.kind}: outside the view untouched`).toBe(true);
      rt.release(big);
    }
  });

  it('payloadBytes and bitsPerValue follow the documented layout', () => {
    const int8: CodecSpec = { kind: 'int8', block: 64, rounding: 'nearest' };
    const int4: CodecSpec = { kind: 'int4', block: 64, rounding: 'stochastic' };
    expect(payloadBytes({ kind: 'fp32' }, 5)).toBe(16 + 20);
    expect(payloadBytes({ kind: 'fp16' }, 5)).toBe(16 + 12);
    expect(payloadBytes(int8, 65)).toBe(16 + 8 + 68);
    expect(payloadBytes(int4, 65)).toBe(16 + 8 + 36);
    expect(payloadBytes({ kind: 'topk', fraction: 0.1 }, 30)).toBe(16 + 3 * 8);
    const n = 1 << 20;
    expect(bitsPerValue({ kind: 'fp32' }, n)).toBeCloseTo(32, 3);
    expect(bitsPerValue({ kind: 'fp16' }, n)).toBeCloseTo(16, 3);
    expect(bitsPerValue(int8, n)).toBeCloseTo(8.5, 3);
    expect(bitsPerValue(int4, n)).toBeCloseTo(4.5, 3);
    expect(bitsPerValue({ kind: 'topk', fraction: 0.01 }, n)).toBeCloseTo(0.64, 2);
  });

  it('encodes 1M floats in milliseconds', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    const n = 1 << 20;
    const x = randn(n, rng(seed), 1);
    const src = rt.upload(x, [n], 'src');
    const out = rt.tensor([n], 'out');
    const times: string[] = [];
    for (const spec of [{ kind: 'fp16' }, blockSpecs[0], blockSpecs[1], blockSpecs[3]] as CodecSpec[]) {
      const codec = createCodec(rt, spec);
      await codec.encode(rt, src, n, KEY); // compile and warm up
      const t0 = performance.now();
      const payload = await codec.encode(rt, src, n, KEY);
      const t1 = performance.now();
      codec.decode(rt, payload, out, n);
      await rt.read(out, 1);
      const t2 = performance.now();
      times.push(
        `${spec.kind}${'rounding' in spec ? ` ${spec.rounding}` : ''}: encode ${(t1 - t0).toFixed(1)} ms, decode ${(t2 - t1).toFixed(1)} ms`,
      );
      expect(t1 - t0, `${spec.kind} encode of 1M values`).toBeLessThan(2000);
    }
    console.log(`[compress] 1M floats: ${times.join('; ')}`);
    rt.release(src);
    rt.release(out);
  });
});
