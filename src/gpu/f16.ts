// IEEE 754 binary16 ("half", WGSL f16) on the host: conversion from f32 with round-to-nearest-even and back, and the
// packed layout the f16 kernels read (shaders/matmul_f16.wgsl).
//
// Packed layout: the Runtime's tensors hold 4-byte elements (src/gpu/tensor.ts), so n halves live in a 'u32' tensor
// of f16Words(n) = ceil(n / 2) words, two halves per word, little-endian: half 2i in the low 16 bits of word i, half
// 2i + 1 in the high 16 bits (zero when n is odd). That is byte for byte an `array<f16>` of n elements, which is how
// the kernels bind it; the padding half keeps every binding a whole number of 4-byte words.
//
// All conversions work on bit patterns with integer arithmetic (no Math.fround, no float rounding), so they are
// exact and the same on every JS engine. NaN payloads survive f16 -> f32 -> f16 (a payload that only lives in the
// low 13 bits of an f32 NaN becomes the quiet NaN 0x7e00, keeping a NaN a NaN).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The bit pattern of x as an f32 (x is first rounded to f32, as storing it in a Float32Array would). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The f32 whose bit pattern is `bits`. */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0];
}

/** Round an f32 bit pattern to the nearest half (ties to even); overflow goes to +-Inf, underflow to subnormals / +-0. */
export function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    const payload = mant >>> 13;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  // Half exponent field for a normal result: f32 bias 127, half bias 15.
  const e = exp - 112;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero) half: the result counts units of 2^-24. |x| < 2^-25 (e < -10) rounds to zero.
    if (e < -10) return sign;
    // f32 zero and f32 subnormals have exp = 0 (e = -112) and were returned above, so the hidden bit is set here.
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    const h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    // h + 1 may reach 0x400: the smallest normal half, which is the correct encoding of that carry.
    return sign | (rem > half || (rem === half && (h & 1) === 1) ? h + 1 : h);
  }
  const h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent; out of 0x7bff it gives 0x7c00 = Inf (>= 65520 overflows).
  return sign | (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1) ? h + 1 : h);
}

/** The half nearest to x (x first rounded to f32: the engine's values are f32). Returns the 16-bit pattern. */
export function f32ToF16(x: number): number {
  return f32BitsToF16(f32Bits(x));
}

/** The f32 bit pattern of a half (exact: every half is an f32). */
export function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal half: normalise (mant * 2^-24 with the leading one moved to the hidden bit).
  let m = mant;
  let e = 113; // f32 exponent field of 2^-14, the subnormals' scale before normalising
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** The value of a half. */
export function f16ToF32(h: number): number {
  return f32FromBits(f16ToF32Bits(h));
}

/** u32 words that hold n packed halves. */
export function f16Words(n: number): number {
  return Math.ceil(n / 2);
}

/** Rounds each value to a half and packs them (see the layout above). */
export function packF16(data: ArrayLike<number>): Uint32Array {
  const words = new Uint32Array(f16Words(data.length));
  for (let i = 0; i < data.length; i++) words[i >>> 1] |= f32ToF16(data[i]) << ((i & 1) * 16);
  return words;
}

/** The first n halves of packed words, as f32 values. */
export function unpackF16(words: Uint32Array, n: number): Float32Array {
  if (words.length < f16Words(n)) throw new Error(`unpackF16: ${words.length} words hold fewer than ${n} halves`);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f16ToF32((words[i >>> 1] >>> ((i & 1) * 16)) & 0xffff);
  return out;
}

/** Each value rounded to the nearest half, as f32 (what a kernel reading packF16(data) sees). */
export function roundF16(data: ArrayLike<number>): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f16ToF32(f32ToF16(data[i]));
  return out;
}
