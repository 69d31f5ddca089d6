// Dense wire codecs (docs/compression.md "Wire formats"): fp16 pack/unpack, blockwise absmax int8/int4 with one f32
// scale per block, their in-place round trips, and the elementwise helpers of error feedback.
//
// Floats are handled as their bits (array<u32>) wherever the result must be exact: the f32 <-> f16 conversion and
// the block absmax are integer code, so they give the same bits on every adapter (no denormal flushing, no NaN
// canonicalisation, round-to-nearest-even by construction, overflow to inf like a real cast).
//
// Blockwise (BITS = 8: QMAX 127, four codes per u32; BITS = 4: QMAX 7, eight codes per u32, low bits first):
//   block b covers x[b*block .. min(n, (b+1)*block)); absmax = max |x| (by bits);
//   scale = NaN if the block holds inf/NaN; 0 if absmax < 2^-119 (a scale that would be subnormal: flushed the same
//   way everywhere); else absmax * inv_qmax (inv_qmax = f32(1/QMAX) from the host: a correctly rounded product).
//   code  = 0 where !(scale > 0); else clamp(q, -QMAX, QMAX) with q = round(x / scale) (round half to even) or,
//   STOCHASTIC, floor(x / scale + u), u = (hash(key, element index) >> 8) * 2^-24 in [0, 1).
//   value = f32(code) * scale   (a NaN scale decodes its whole block to NaN; a zero scale to zeros).
// Payload body layout (u32 words, after the 16-byte header the host writes): scales [nb] (f32 bits) at 0, codes at
// code_off = nb. fp16 body: ceil(n/2) words, element 2w in the low half of word w.
//
// Threads: 256 per workgroup, i = (wg.y * num_wg.x + wg.x) * 256 + lid.x over the items of each entry
// (words, blocks or elements). No atomics, no reductions across threads: every output has one writer.

//#define BITS 8
//#define STOCHASTIC false
//#define ACC false

struct Params {
  n: u32,         // elements
  items: u32,     // threads with work (words, blocks or elements)
  block: u32,     // blockwise: values per scale
  code_off: u32,  // blockwise: word offset of the codes in the payload body
  key_hash: u32,  // STOCHASTIC: hash of the rounding key (src/compress/rounding-key.ts, same function)
  qmax: f32,      // 127 or 7
  inv_qmax: f32,  // f32(1 / qmax)
}

@group(0) @binding(0) var<uniform> p: Params;

const PER_WORD: u32 = 32u / {{BITS}}u;
const CODE_MASK: u32 = (1u << {{BITS}}u) - 1u;
const NAN_BITS: u32 = 0x7fc00000u;

fn flat_id(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

// ---- f32 <-> f16 on bits

// IEEE binary16 of an f32, round to nearest even; |x| >= 65520 -> inf; NaN stays a (quiet) NaN with its sign.
fn f32_to_f16(x: u32) -> u32 {
  let sign = (x >> 16u) & 0x8000u;
  let a = x & 0x7fffffffu;
  if (a > 0x7f800000u) { return sign | 0x7e00u | ((a >> 13u) & 0x1ffu); }
  if (a >= 0x47800000u) { return sign | 0x7c00u; }               // >= 65536 (and inf)
  if (a >= 0x38800000u) {                                          // normal f16 (>= 2^-14)
    let m = a - 0x38000000u;                                       // rebias the exponent (127 - 15) << 23
    return sign | ((m + 0xfffu + ((m >> 13u) & 1u)) >> 13u);       // RNE; a carry into the exponent is right, 65520 -> inf
  }
  let e = a >> 23u;                                                // subnormal f16: units of 2^-24
  if (e < 102u) { return sign; }                                   // < 2^-25: rounds to 0
  let mant = (a & 0x7fffffu) | 0x800000u;
  let shift = 126u - e;                                            // 14 ..= 24
  var q = mant >> shift;
  let rem = mant & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u) == 1u)) { q = q + 1u; }
  return sign | q;                                                 // q == 0x400 is the smallest normal: right bits
}

// The f32 bits of a binary16 (exact).
fn f16_to_f32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | 0x7f800000u | (m << 13u); }
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return sign; }
  let top = 31u - countLeadingZeros(m);                            // 0 ..= 9: m * 2^-24 = 2^(top-24) * 1.f
  return sign | ((top + 103u) << 23u) | ((m << (23u - top)) & 0x7fffffu);
}

// ---- fp16 encode: src_bits [n] (f32 bits) -> dst_words [ceil(n/2)]
@group(0) @binding(1) var<storage, read> src_bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst_words: array<u32>;

@compute @workgroup_size(256)
fn fp16_encode(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let w = flat_id(wg, nwg, lid);
  if (w >= p.items) { return; }
  let lo = f32_to_f16(src_bits[2u * w]);
  var hi = 0u;
  if (2u * w + 1u < p.n) { hi = f32_to_f16(src_bits[2u * w + 1u]); }
  dst_words[w] = lo | (hi << 16u);
}

// ---- dense decode outputs: overwrite the bits, or (ACC) add the value
@group(0) @binding(2) var<storage, read_write> out_bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_acc: array<f32>;

fn emit(i: u32, bits: u32) {
//#if ACC
  out_acc[i] = out_acc[i] + bitcast<f32>(bits);
//#else
  out_bits[i] = bits;
//#endif
}

// ---- fp16 decode: words [ceil(n/2)] -> out [n]
@group(0) @binding(1) var<storage, read> words: array<u32>;

@compute @workgroup_size(256)
fn fp16_decode(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let w = flat_id(wg, nwg, lid);
  if (w >= p.items) { return; }
  let v = words[w];
  emit(2u * w, f16_to_f32(v & 0xffffu));
  if (2u * w + 1u < p.n) { emit(2u * w + 1u, f16_to_f32(v >> 16u)); }
}

// ---- fp16 round trip in place: io_bits [n]
@group(0) @binding(1) var<storage, read_write> io_bits: array<u32>;

@compute @workgroup_size(256)
fn fp16_roundtrip(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  io_bits[i] = f16_to_f32(f32_to_f16(io_bits[i]));
}

// ---- blockwise quantiser

// PCG hash (O'Neill's pcg32 output on one step; Jarzynski & Olano 2020), mirrored in src/compress/rounding-key.ts.
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

fn quantize(x: f32, sc: f32, i: u32) -> i32 {
  if (!(sc > 0.0)) { return 0; }
  let y = x / sc;
//#if STOCHASTIC
  let u = f32(pcg(pcg(i) ^ p.key_hash) >> 8u) * (1.0 / 16777216.0);
  let q = floor(y + u);
//#else
  let q = round(y);
//#endif
  return i32(clamp(q, -p.qmax, p.qmax));
}

fn dequantize(code: i32, sc: f32) -> u32 {
  return bitcast<u32>(f32(code) * sc);
}

// Sign-extends a BITS-wide code.
fn unpack_code(word: u32, j: u32) -> i32 {
  return i32(((word >> (j * {{BITS}}u)) & CODE_MASK) << (32u - {{BITS}}u)) >> (32u - {{BITS}}u);
}

// ---- block scales: xin [n] (f32 bits) -> scales_out [nb] (f32 bits), one thread per block
@group(0) @binding(1) var<storage, read> xin: array<u32>;
@group(0) @binding(2) var<storage, read_write> scales_out: array<u32>;

@compute @workgroup_size(256)
fn block_scales(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = flat_id(wg, nwg, lid);
  if (b >= p.items) { return; }
  let start = b * p.block;
  let end = min(p.n, start + p.block);
  var m = 0u;
  for (var i = start; i < end; i++) { m = max(m, xin[i] & 0x7fffffffu); }
  var s = 0u;
  if (m >= 0x7f800000u) { s = NAN_BITS; }
  else if (m >= 0x04000000u) { s = bitcast<u32>(bitcast<f32>(m) * p.inv_qmax); }
  scales_out[b] = s;
}

// ---- blockwise encode: xin [n], payload [code_off + ceil(n / PER_WORD)] (scales already at 0 .. nb)
@group(0) @binding(2) var<storage, read_write> payload: array<u32>;

@compute @workgroup_size(256)
fn block_encode(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let w = flat_id(wg, nwg, lid);
  if (w >= p.items) { return; }
  var word = 0u;
  for (var j = 0u; j < PER_WORD; j++) {
    let i = w * PER_WORD + j;
    if (i >= p.n) { break; }
    let code = quantize(bitcast<f32>(xin[i]), bitcast<f32>(payload[i / p.block]), i);
    word = word | ((u32(code) & CODE_MASK) << (j * {{BITS}}u));
  }
  payload[p.code_off + w] = word;
}

// ---- blockwise decode: payload_in -> out [n] (one thread per code word)
@group(0) @binding(1) var<storage, read> payload_in: array<u32>;

@compute @workgroup_size(256)
fn block_decode(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let w = flat_id(wg, nwg, lid);
  if (w >= p.items) { return; }
  let word = payload_in[p.code_off + w];
  for (var j = 0u; j < PER_WORD; j++) {
    let i = w * PER_WORD + j;
    if (i >= p.n) { break; }
    emit(i, dequantize(unpack_code(word, j), bitcast<f32>(payload_in[i / p.block])));
  }
}

// ---- blockwise round trip in place: io [n] (f32 bits), scales_in [nb] from block_scales (same functions as
// encode + decode, so the same bits)
@group(0) @binding(1) var<storage, read> scales_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> io: array<u32>;

@compute @workgroup_size(256)
fn block_roundtrip(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  let sc = bitcast<f32>(scales_in[i / p.block]);
  io[i] = dequantize(quantize(bitcast<f32>(io[i]), sc, i), sc);
}

// ---- error feedback helpers (f32, elementwise over n)
@group(0) @binding(1) var<storage, read> ew_a: array<f32>;
@group(0) @binding(2) var<storage, read> ew_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> ew_out: array<f32>;

// ew_out = ew_a + ew_b
@compute @workgroup_size(256)
fn ew_add(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  ew_out[i] = ew_a[i] + ew_b[i];
}

// ew_out = ew_a - ew_b
@compute @workgroup_size(256)
fn ew_sub(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  ew_out[i] = ew_a[i] - ew_b[i];
}

// ew_acc += ew_a
@group(0) @binding(2) var<storage, read_write> ew_acc: array<f32>;

@compute @workgroup_size(256)
fn ew_accumulate(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  ew_acc[i] = ew_acc[i] + ew_a[i];
}
