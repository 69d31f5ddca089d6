// Host f16 conversions (src/gpu/f16.ts) against references that share none of its code:
//  - decoding: every one of the 65,536 half patterns against the textbook formula (-1)^s 2^(e-15) (1 + m/1024) /
//    (-1)^s 2^-14 (m/1024), evaluated in float64, and bit-exact round trips half -> f32 -> half (NaNs included);
//  - encoding: f32 inputs against round-to-nearest-even computed in exact BigInt integer arithmetic (values in units of
//    2^-149, the f32 subnormal step, so every f32 and every half is an integer), on every tie between adjacent halves,
//    one f32 ulp either side of each tie, the overflow threshold and random f32 bit patterns.
import { describe, expect, it } from 'vitest';
import { f16ToF32, f16ToF32Bits, f16Words, f32BitsToF16, f32FromBits, f32ToF16, packF16, roundF16, unpackF16 } from './f16';

/** Textbook value of a half, in float64 (no shared code with f16ToF32). */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/** |value| of a finite f32 bit pattern in units of 2^-149 (exact). */
function f32Units(bits: number): bigint {
  const exp = (bits >>> 23) & 0xff;
  const mant = BigInt(bits & 0x7fffff);
  return exp === 0 ? mant : (mant | 0x800000n) << BigInt(exp - 1);
}

/** |value| of a finite positive half pattern (0..0x7bff) in units of 2^-149 (exact). */
function halfUnits(h: number): bigint {
  const e = h >> 10;
  const m = BigInt(h & 0x3ff);
  return e === 0 ? m << 125n : (m | 0x400n) << BigInt(e + 124);
}

const HALF_UNITS = Array.from({ length: 0x7c00 }, (_, h) => halfUnits(h));
/** 65520 = 65504 + half an ulp at the top binade: the tie to the would-be 65536 goes to even and overflows. */
const OVERFLOW_UNITS = 65520n << 149n;

/** Round-to-nearest-even of an f32 bit pattern to a half, by binary search over the exact half values. */
function referenceF16(bits: number): number {
  const exp = (bits >>> 23) & 0xff;
  const sign = (bits >>> 16) & 0x8000;
  if (exp === 0xff) throw new Error('reference covers finite inputs only');
  const v = f32Units(bits);
  if (v >= OVERFLOW_UNITS) return sign | 0x7c00;
  // largest h with HALF_UNITS[h] <= v
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (HALF_UNITS[mid] <= v) lo = mid;
    else hi = mid - 1;
  }
  if (lo === 0x7bff) return sign | lo; // between 65504 and 65520: rounds down
  const below = v - HALF_UNITS[lo];
  const above = HALF_UNITS[lo + 1] - v;
  const pick = below < above ? lo : above < below ? lo + 1 : (lo & 1) === 0 ? lo : lo + 1;
  return sign | pick;
}

describe('f16 host conversions', () => {
  it('decodes all 65,536 halves exactly and round-trips every bit pattern (NaNs, Inf, subnormals, -0)', () => {
    let nans = 0;
    for (let h = 0; h < 0x10000; h++) {
      const want = halfValue(h);
      const got = f16ToF32(h);
      if (Number.isNaN(want)) {
        nans++;
        expect(Number.isNaN(got), `half 0x${h.toString(16)}`).toBe(true);
      } else {
        expect(Object.is(got, want), `half 0x${h.toString(16)}: ${got} != ${want}`).toBe(true);
      }
      // bit-exact, payload and sign included
      expect(f32BitsToF16(f16ToF32Bits(h)), `round trip of 0x${h.toString(16)}`).toBe(h);
      if (!Number.isNaN(want)) expect(f32ToF16(want)).toBe(h);
    }
    expect(nans).toBe(2 * 1023);
  });

  it('rounds every tie between adjacent halves to the even one, and one f32 ulp either side to the nearer', () => {
    let ties = 0;
    for (let h = 0; h < 0x7bff; h++) {
      for (const sign of [0, 0x8000]) {
        const s = sign ? -1 : 1;
        const mid = s * ((halfValue(h) + halfValue(h + 1)) / 2); // exact in float64 and in f32 (12 significant bits)
        const midBits = new Uint32Array(new Float32Array([mid]).buffer)[0];
        expect(f32FromBits(midBits)).toBe(mid);
        const even = (h & 1) === 0 ? h : h + 1;
        expect(f32BitsToF16(midBits), `tie between 0x${h.toString(16)} and 0x${(h + 1).toString(16)}`).toBe(sign | even);
        expect(referenceF16(midBits)).toBe(sign | even);
        // one f32 ulp towards zero / away from zero (same sign, so bits - 1 / bits + 1)
        expect(f32BitsToF16(midBits - 1)).toBe(sign | h);
        expect(f32BitsToF16(midBits + 1)).toBe(sign | (h + 1));
        ties++;
      }
    }
    expect(ties).toBe(2 * 0x7bff);
  });

  it('overflows to Inf from 65520 (the tie above the largest half) and keeps 65519.99 finite', () => {
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519.996)).toBe(0x7bff); // the f32 just below 65520
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(-65520)).toBe(0xfc00);
    expect(f32ToF16(1e30)).toBe(0x7c00);
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f32ToF16(NaN) & 0x7c00).toBe(0x7c00);
    expect(f32ToF16(NaN) & 0x3ff).not.toBe(0);
    // underflow: half the smallest subnormal is a tie to even (zero); anything above rounds up to it
    expect(f32ToF16(2 ** -25)).toBe(0);
    expect(f32ToF16(2 ** -25 * (1 + 2 ** -23))).toBe(1);
    expect(f32ToF16(-(2 ** -26))).toBe(0x8000);
    expect(f32ToF16(1e-45)).toBe(0); // an f32 subnormal
    expect(f32ToF16(3 * 2 ** -25)).toBe(2); // tie between subnormals 1 and 2 goes to even
    expect(f32ToF16(2 ** -14 - 2 ** -25)).toBe(0x400); // tie between the largest subnormal and the smallest normal
  });

  it('matches the integer reference on 200,000 random finite f32 bit patterns', () => {
    let state = 0x9e3779b9;
    const next = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return state >>> 0;
    };
    let checked = 0;
    for (let i = 0; i < 200_000; i++) {
      let bits = next();
      // concentrate on the interesting exponents (half range, subnormals, overflow edge) half the time
      if (i & 1) bits = (bits & 0x807fffff) | ((100 + (next() % 60)) << 23);
      if (((bits >>> 23) & 0xff) === 0xff) continue;
      expect(f32BitsToF16(bits), `f32 0x${bits.toString(16)}`).toBe(referenceF16(bits));
      checked++;
    }
    expect(checked).toBeGreaterThan(199_000);
  });

  it('packs two halves per word, little-endian, with a zero pad half for odd counts', () => {
    const x = [1, -2, 0.5, 65504, 3];
    const w = packF16(x);
    expect(w.length).toBe(f16Words(5));
    expect(w.length).toBe(3);
    expect(w[0]).toBe(((0xc000 << 16) | 0x3c00) >>> 0);
    expect(w[1]).toBe(((0x7bff << 16) | 0x3800) >>> 0);
    expect(w[2]).toBe(0x4200);
    expect([...unpackF16(w, 5)]).toEqual(x);
    const r = roundF16([0.1, 1 + 2 ** -11, 1 + 3 * 2 ** -11]);
    expect([...r]).toEqual([halfValue(f32ToF16(0.1)), 1, 1 + 2 ** -9]);
    expect(() => unpackF16(new Uint32Array(1), 3)).toThrow(/fewer than 3 halves/);
  });
});
