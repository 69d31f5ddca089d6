// Cast f32 -> packed f16 (src/gpu/ops/cast-f16.ts launches it), optionally scaled by an exact power of two:
//   out halves[i] = half(inp[i] * 2^SCALE_EXP) for i < n          inp: f32 [n]; out: u32 [ceil(n / 2)]
// Packed layout of src/gpu/f16.ts: half 2i in the low 16 bits of word i, half 2i + 1 in the high bits, and the pad
// half of an odd n is 0 (exactly the words packF16 gives), so the result is byte for byte an array<f16> of n halves.
//
// Rounding is src/gpu/f16.ts's f32BitsToF16, on bit patterns with integer arithmetic only: round to nearest even,
// overflow (>= 65520 in magnitude) to +-Inf, underflow to subnormal halves or a signed zero, Inf kept, NaN kept a NaN
// (its top 10 payload bits, or the quiet 0x7e00 when those are zero). `inp` is bound as array<u32>, so no float
// operation ever touches a value: no flush of f32 subnormals, no NaN canonicalisation, the same bits on every
// adapter, and no need for the 'shader-f16' feature.
// The scale 2^scaleExp (0 <= scaleExp <= 64) is added to the exponent: for a normal f32 x this is the half of the
// exact product x * 2^scaleExp (an overflow of f32's range is an overflow of f16's too); an f32 subnormal or zero is
// below 2^-126 * 2^64 = 2^-62, far under the smallest half, so it gives the signed zero whatever the scale.
//
// 256 threads, item i = (wg.y * num_wg.x + wg.x) * 256 + lid.x. Scalar: item i makes word i from inp[2i], inp[2i+1].
// VEC4 (n % 4 == 0): item i reads inp as one vec4 and writes words 2i, 2i+1 (loads decide speed on CPU adapters).
// Template (src/gpu/wgsl.ts): VEC4 picks the variant.

//#define VEC4 false

struct Params { n: u32, items: u32, scaleExp: u32 }

@group(0) @binding(0) var<uniform> p: Params;
//#if VEC4
@group(0) @binding(1) var<storage, read> inp: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec2<u32>>;
//#else
@group(0) @binding(1) var<storage, read> inp: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
//#endif

// The half nearest to (the f32 with bit pattern `bits`) * 2^p.scaleExp, as a 16-bit pattern.
fn half_bits(bits: u32) -> u32 {
  let sign = (bits >> 16u) & 0x8000u;
  let e32 = (bits >> 23u) & 0xffu;
  let mant = bits & 0x7fffffu;
  if (e32 == 0xffu) {
    if (mant == 0u) { return sign | 0x7c00u; }
    let payload = mant >> 13u;
    return sign | 0x7c00u | select(payload, 0x200u, payload == 0u);
  }
  // f32 zero or subnormal: below 2^-62 even after the largest scale, so a signed zero.
  if (e32 == 0u) { return sign; }
  // Half exponent field for a normal result (f32 bias 127, half bias 15), the scale added.
  let e = i32(e32) - 112 + i32(p.scaleExp);
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    // Subnormal (or zero) half counting units of 2^-24; |x| < 2^-25 (e < -10) rounds to zero.
    if (e < -10) { return sign; }
    let m = mant | 0x800000u;
    let shift = u32(14 - e); // 14..24
    let h = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    // h + 1 may reach 0x400, the smallest normal half: the correct encoding of that carry.
    return sign | select(h, h + 1u, rem > half || (rem == half && (h & 1u) == 1u));
  }
  let h = (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  // A carry out of the mantissa bumps the exponent; out of 0x7bff it gives 0x7c00 = Inf.
  return sign | select(h, h + 1u, rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u));
}

@compute @workgroup_size(256)
fn cast_f16(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
  if (i >= p.items) { return; }
//#if VEC4
  let v = inp[i];
  out[i] = vec2u(half_bits(v.x) | (half_bits(v.y) << 16u), half_bits(v.z) | (half_bits(v.w) << 16u));
//#else
  let lo = half_bits(inp[2u * i]);
  var hi = 0u;
  if (2u * i + 1u < p.n) { hi = half_bits(inp[2u * i + 1u]); }
  out[i] = lo | (hi << 16u);
//#endif
}
