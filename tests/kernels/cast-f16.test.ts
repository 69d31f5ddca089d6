// The GPU cast f32 -> packed f16 (shaders/cast_f16.wgsl via src/gpu/ops/cast-f16.ts) against the host's packF16
// (src/gpu/f16.ts), bit for bit: every word, including the pad half of an odd count, must equal what packF16 makes.
// Inputs: random bit patterns (every class of f32: NaN with payloads, +-Inf, subnormals, zeros, normals of any
// exponent), randn at scales from f16's subnormal range to past its overflow, and a list of edge values (the ties
// around 1, the overflow threshold 65520, the subnormal ties 2^-25 and 3 * 2^-25, ...). Counts are odd, even and
// multiples of 4 (the vec4 variant), up to a million; outputs are poisoned with a known pattern, one word
// past the end is a sentinel that must survive, and the input goes on past n with 1.0s that the pad half must not
// pick up. The reference rounds the raw bit patterns with packF16's own
// f32BitsToF16, because a NaN read into a JS number may lose its payload (for the other values it is packF16 itself,
// checked below). The scaled cast must be the half of the exact product x * 2^k.
import { describe, expect, it } from 'vitest';
import { f16Words, f32BitsToF16, f32ToF16, packF16 } from '../../src/gpu/f16';
import { castF16 } from '../../src/gpu/ops/cast-f16';
import type { Runtime } from '../../src/gpu/runtime';
import type { Tensor } from '../../src/gpu/tensor';
import { freshSeed, gpuRuntime, randn, rng } from '../support/gpu';

const POISON = 0xdeadbeef;

/** Values where rounding, overflow, underflow or the NaN rules are easy to get wrong. */
const EDGES = [
  0,
  -0,
  1,
  -1,
  1 + 2 ** -11, // tie, even below: 1
  1 + 3 * 2 ** -11, // tie, odd below: rounds up
  1 + 2 ** -11 + 2 ** -23, // just over the tie
  65504,
  65519.99,
  65520, // ties to 2^16: Inf
  -65520,
  1e10,
  2 ** -14, // smallest normal half
  2 ** -14 - 2 ** -25, // rounds up to the smallest normal (carry out of the subnormals)
  2 ** -24, // smallest subnormal half
  2 ** -25, // tie to zero (even)
  3 * 2 ** -25, // tie between 1 and 2 units: 2
  -(2 ** -26),
  1e-40, // f32 subnormal
  -1e-45,
  Infinity,
  -Infinity,
  Number.NaN,
];

/** n f32 bit patterns: random bits, randn at several scales and the edge values, interleaved. */
function inputBits(n: number, seed: number): Uint32Array {
  const rand = rng(seed);
  const bits = new Uint32Array(n);
  const f = new Float32Array(bits.buffer);
  const normal = randn(n, rand);
  for (let i = 0; i < n; i++) {
    const kind = Math.floor(rand() * 4);
    if (kind === 0) bits[i] = Math.floor(rand() * 2 ** 32) >>> 0;
    else if (kind === 1) f[i] = EDGES[Math.floor(rand() * EDGES.length)];
    else f[i] = normal[i] * 10 ** (Math.floor(rand() * 14) - 9); // 1e-9 .. 1e4 (and beyond in the tails)
  }
  return bits;
}

/** The words packF16 makes of these bit patterns (scaled by 2^k: the exact product, then f32, then the half). */
function expected(bits: Uint32Array, k: number): Uint32Array {
  const f = new Float32Array(bits.buffer, bits.byteOffset, bits.length);
  const words = new Uint32Array(f16Words(bits.length));
  for (let i = 0; i < bits.length; i++) {
    const isNaN = (bits[i] & 0x7f800000) === 0x7f800000 && (bits[i] & 0x7fffff) !== 0;
    const h = isNaN || k === 0 ? f32BitsToF16(bits[i]) : f32ToF16(f[i] * 2 ** k);
    words[i >>> 1] |= h << ((i & 1) * 16);
  }
  return words;
}

function expectWords(what: string, got: Uint32Array, want: Uint32Array): void {
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      const hex = (x: number) => `0x${(x >>> 0).toString(16).padStart(8, '0')}`;
      throw new Error(`${what}: word ${i} (halves ${2 * i}, ${2 * i + 1}) is ${hex(got[i])}, packF16 gives ${hex(want[i])}`);
    }
  }
}

/** Runs the cast of `bits` into a poisoned output one word longer than needed; returns the words and the sentinel. */
async function runCast(
  rt: Runtime,
  bits: Uint32Array,
  k: number,
  at?: { inp: number; out: number },
): Promise<{ words: Uint32Array; sentinel: number }> {
  const n = bits.length;
  const words = f16Words(n);
  const release: Tensor[] = [];
  const make = (size: number, offset: number, label: string, dtype: 'f32' | 'u32') => {
    const parent = rt.tensor([size + offset], `${label}_parent`, dtype);
    release.push(parent);
    return offset === 0 ? parent : rt.view(parent, offset, [size], label);
  };
  // Four more inputs than the cast reads, all 1.0: an odd count's pad half must not pick one up.
  const inp = make(n + 4, at?.inp ?? 0, 'inp', 'f32');
  rt.write(
    inp,
    Float32Array.from({ length: n + 4 }, () => 1),
  );
  rt.write(inp, bits);
  const out = make(words + 1, at?.out ?? 0, 'out', 'u32');
  rt.fill(out, POISON);
  castF16(rt, { out, inp }, { n, scaleExp: k });
  const got = await rt.readU32(out);
  for (const t of release) rt.release(t);
  return { words: got.subarray(0, words), sentinel: got[words] };
}

describe('cast_f16', () => {
  const counts = [1, 2, 3, 4, 5, 7, 8, 255, 257, 1023, 1024, 4099, 70_001, 1_000_003];
  for (const n of counts) {
    it(`n=${n}: bit for bit packF16, pad half zero, nothing written past the end`, async () => {
      const rt = await gpuRuntime();
      const seed = freshSeed();
      const bits = inputBits(n, seed);
      const { words, sentinel } = await runCast(rt, bits, 0);
      expectWords(`cast_f16 n=${n} seed=${seed}`, words, expected(bits, 0));
      expect(sentinel).toBe(POISON);
    }, 60_000);
  }

  it('the reference is packF16 itself wherever the input is not a NaN', () => {
    const bits = inputBits(4097, freshSeed());
    const f = new Float32Array(bits.buffer);
    const finite = Float32Array.from(f.filter((x) => !Number.isNaN(x)));
    const fBits = new Uint32Array(finite.buffer);
    expect(finite.length).toBeGreaterThan(3000);
    expectWords('host reference', expected(fBits, 0), packF16(finite));
  });

  for (const k of [1, 8, 15, 24, 64]) {
    it(`scaled by 2^${k}: the half of the exact product, NaN and Inf kept, on views at offsets`, async () => {
      const rt = await gpuRuntime();
      const seed = freshSeed();
      const bits = inputBits(1001 + k, seed);
      const a = rt.viewAlignment;
      const { words, sentinel } = await runCast(rt, bits, k, { inp: a * (k % 3), out: a });
      expectWords(`cast_f16 2^${k} seed=${seed}`, words, expected(bits, k));
      expect(sentinel).toBe(POISON);
      // The scale really applies: the unscaled words differ (the inputs have many normal values).
      const plain = expected(bits, 0);
      expect(words.some((w, i) => w !== plain[i])).toBe(true);
    });
  }

  it('refuses wrong types, short outputs and scales out of range with clear errors', async () => {
    const rt = await gpuRuntime();
    const f = rt.tensor([5], 'f');
    const u = rt.tensor([3], 'u', 'u32');
    expect(() => castF16(rt, { out: u, inp: f }, { n: 5 })).not.toThrow();
    expect(() => castF16(rt, { out: f, inp: f }, { n: 5 })).toThrow(/out f is f32; packed f16 lives in u32 tensors/);
    expect(() => castF16(rt, { out: u, inp: u }, { n: 5 })).toThrow(/inp u is u32, expected f32/);
    expect(() => castF16(rt, { out: rt.tensor([2], 'u2', 'u32'), inp: f }, { n: 5 })).toThrow(/out u2 holds 2 words, needs 3 for 5 halves/);
    expect(() => castF16(rt, { out: u, inp: f }, { n: 6 })).toThrow(/inp f holds 5 elements, needs 6/);
    expect(() => castF16(rt, { out: u, inp: f }, { n: 5, scaleExp: -1 })).toThrow(/scaleExp -1 is not an integer in 0..64/);
    expect(() => castF16(rt, { out: u, inp: f }, { n: 5, scaleExp: 65 })).toThrow(/scaleExp 65/);
    expect(() => castF16(rt, { out: u, inp: f }, { n: 2.5 })).toThrow(/n = 2.5 is not a valid size/);
    await rt.flush();
  });
});
