// Causal multi-head self-attention (GPT-2), forward and backward.
//
// Shapes (hs = C / NH, scale = 1 / sqrt(hs)):
//   qkv   [B, T, 3C]     q | k | v along the last dim; head h uses columns h*hs .. (h+1)*hs of each part
//   out   [B, T, C]      head outputs concatenated (before c_proj)
//   att   [B, NH, T, T]  softmax probabilities; entries s > t are written as 0
//   dout  [B, T, C]
//   datt  [B, NH, T, T]  backward scratch: holds dpreatt * scale (zero above the diagonal) after pass 2
//   dqkv  [B, T, 3C]     OVERWRITTEN, every element
//
// Two sets of entry points (src/gpu/ops/attention.ts picks):
//   fast path, T % 4 == 0 and hs % 4 == 0 (vec4 along s for att/datt and along d for qkv/out/dout/dqkv):
//     forward  = attention_scores4 (att <- q.k * scale) -> attention_softmax4 (in place, zeros s > t)
//                -> attention_av4 (out = att @ v)
//     backward = attention_scores4 (datt <- dout.v) -> attention_softmax_backward4 (datt <- dpreatt * scale)
//                -> attention_av4 (dq = datt @ k) -> attention_atv4 (dk = datt^T @ q) -> attention_atv4 (dv = att^T @ dout)
//   generic, any T and hs (VT = vec4f when hs % 4 == 0, else f32):
//     forward  = attention_scores -> attention_softmax -> attention_av
//     backward = attention_scores -> attention_softmax_backward -> attention_backward_dqkv (dq, dk, dv per row block)
//
// CPU adapters (lavapipe, SwiftShader) run a workgroup's lanes as SIMD lanes. Measured on lavapipe: a storage load
// costs about the same whether the lanes' addresses are equal, contiguous or scattered, and a vec4 load costs about
// 2x a scalar one, so every matmul-like entry keeps a block of R = 4 rows (x 4 columns or x one VT) per thread in
// registers and loads vec4s where alignment allows. No workgroup memory, no barriers, no atomics; every reduction
// is a serial loop in a fixed order: bitwise deterministic.
//
// Template (src/gpu/wgsl.ts). VEC4 (hs % 4 == 0): the generic entries index qkv/out/dout/dqkv in VT = vec4f
// units, else f32; att/datt are scalar there. The fast-path entries are vec4 throughout and need VEC4.
// WS, WD, WG4 are lane counts the launcher sets per kernel.

//#define VEC4 true
//#define WS 32
//#define WD 8
//#define WG4 64
//#if VEC4
alias VT = vec4f;
fn hsum(x: VT) -> f32 { return (x.x + x.y) + (x.z + x.w); }
//#else
alias VT = f32;
fn hsum(x: VT) -> f32 { return x; }
//#endif

const R: u32 = 4u;           // rows (or columns) per thread, held in registers
const WS: u32 = {{WS}}u;     // lanes along s in attention_scores (s-blocks in attention_scores4)
const WD: u32 = {{WD}}u;     // lanes along d (VT units) in attention_av / attention_backward_dqkv
const WG4: u32 = {{WG4}}u;   // threads per workgroup in attention_av4 / attention_atv4

struct Params {
  T: u32,
  NH: u32,
  hsv: u32,     // head size in VT units
  aStride: u32, // row stride of operand a / x (VT units)
  aOff: u32,    // column offset of the q/k/v part in operand a / x (VT units)
  bStride: u32,
  bOff: u32,
  scale: f32,
  rows: u32,    // B * NH * T (softmax entries)
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- scores: dst[b,h,t,s] = scale * a_t . b_s for s <= t (entries s > t untouched)
// forward: a = q, b = k (dst = att, raw scores);  backward: a = dout, b = v (dst = datt).
// workgroup (t-block of R rows, b*NH + h); lanes along s; the a rows are the same for every lane.
@group(0) @binding(1) var<storage, read> sc_a: array<VT>;
@group(0) @binding(2) var<storage, read> sc_b: array<VT>;
@group(0) @binding(3) var<storage, read_write> sdst: array<f32>;

@compute @workgroup_size(WS)
fn attention_scores(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let t0 = wg.x * R;
  let bh = wg.y;
  let b = bh / p.NH;
  let h = bh % p.NH;
  let hsv = p.hsv;
  let send = min(T, t0 + R);
  let abase = b * T * p.aStride + p.aOff + h * hsv;
  let a0 = abase + min(t0, T - 1u) * p.aStride;
  let a1 = abase + min(t0 + 1u, T - 1u) * p.aStride;
  let a2 = abase + min(t0 + 2u, T - 1u) * p.aStride;
  let a3 = abase + min(t0 + 3u, T - 1u) * p.aStride;
  let orow = (bh * T + t0) * T;
  for (var s = lid.x; s < send; s += WS) {
    let bs = (b * T + s) * p.bStride + p.bOff + h * hsv;
    var c0 = VT(0.0);
    var c1 = VT(0.0);
    var c2 = VT(0.0);
    var c3 = VT(0.0);
    for (var i = 0u; i < hsv; i++) {
      let kv = sc_b[bs + i];
      c0 += sc_a[a0 + i] * kv;
      c1 += sc_a[a1 + i] * kv;
      c2 += sc_a[a2 + i] * kv;
      c3 += sc_a[a3 + i] * kv;
    }
    let o = orow + s;
    if (s <= t0) { sdst[o] = hsum(c0) * p.scale; }
    if (s <= t0 + 1u && t0 + 1u < T) { sdst[o + T] = hsum(c1) * p.scale; }
    if (s <= t0 + 2u && t0 + 2u < T) { sdst[o + 2u * T] = hsum(c2) * p.scale; }
    if (s <= t0 + 3u && t0 + 3u < T) { sdst[o + 3u * T] = hsum(c3) * p.scale; }
  }
}

// ---- softmax over s <= t in place (raw scores -> probabilities), zeros for s > t. One thread per row.
@group(0) @binding(1) var<storage, read_write> smx: array<f32>;

@compute @workgroup_size(64)
fn attention_softmax(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let row = (wg.y * nwg.x + wg.x) * 64u + lid.x;
  if (row >= p.rows) { return; }
  let t = row % T;
  let base = row * T;
  var mx = smx[base];
  for (var s = 1u; s <= t; s++) { mx = max(mx, smx[base + s]); }
  var sum = 0.0;
  for (var s = 0u; s <= t; s++) {
    let e = exp(smx[base + s] - mx);
    smx[base + s] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var s = 0u; s <= t; s++) { smx[base + s] *= inv; }
  for (var s = t + 1u; s < T; s++) { smx[base + s] = 0.0; }
}

// ---- softmax backward in place: datt <- att * (datt - sum_s att*datt) * scale for s <= t, zeros for s > t.
@group(0) @binding(1) var<storage, read> sb_att: array<f32>;
@group(0) @binding(2) var<storage, read_write> sb_datt: array<f32>;

@compute @workgroup_size(64)
fn attention_softmax_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                              @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let row = (wg.y * nwg.x + wg.x) * 64u + lid.x;
  if (row >= p.rows) { return; }
  let t = row % T;
  let base = row * T;
  var dot = 0.0;
  for (var s = 0u; s <= t; s++) { dot += sb_att[base + s] * sb_datt[base + s]; }
  for (var s = 0u; s <= t; s++) {
    sb_datt[base + s] = sb_att[base + s] * (sb_datt[base + s] - dot) * p.scale;
  }
  for (var s = t + 1u; s < T; s++) { sb_datt[base + s] = 0.0; }
}

// ---- y[b, t, h, d] = sum_{s <= t} P[b,h,t,s] x[b, s, h, d]   (P zero above the diagonal)
// forward: P = att, x = v, y = out.   workgroup (t-block of R rows, b*NH + h, d-chunk); lanes along d.
@group(0) @binding(1) var<storage, read> av_p: array<f32>;
@group(0) @binding(2) var<storage, read> av_x: array<VT>;
@group(0) @binding(3) var<storage, read_write> av_y: array<VT>;

@compute @workgroup_size(WD)
fn attention_av(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let hsv = p.hsv;
  let d = wg.z * WD + lid.x;
  if (d >= hsv) { return; }
  let t0 = wg.x * R;
  let bh = wg.y;
  let b = bh / p.NH;
  let h = bh % p.NH;
  let send = min(T, t0 + R);
  let xb = b * T * p.aStride + p.aOff + h * hsv + d;
  let p0 = (bh * T + min(t0, T - 1u)) * T;
  let p1 = (bh * T + min(t0 + 1u, T - 1u)) * T;
  let p2 = (bh * T + min(t0 + 2u, T - 1u)) * T;
  let p3 = (bh * T + min(t0 + 3u, T - 1u)) * T;
  var y0 = VT(0.0);
  var y1 = VT(0.0);
  var y2 = VT(0.0);
  var y3 = VT(0.0);
  for (var s = 0u; s < send; s++) {
    let xv = av_x[xb + s * p.aStride];
    y0 += av_p[p0 + s] * xv;
    y1 += av_p[p1 + s] * xv;
    y2 += av_p[p2 + s] * xv;
    y3 += av_p[p3 + s] * xv;
  }
  let yb = (b * T + t0) * p.bStride + p.bOff + h * hsv + d;
  av_y[yb] = y0;
  if (t0 + 1u < T) { av_y[yb + p.bStride] = y1; }
  if (t0 + 2u < T) { av_y[yb + 2u * p.bStride] = y2; }
  if (t0 + 3u < T) { av_y[yb + 3u * p.bStride] = y3; }
}

// ---- backward: rows r0..r0+R-1 of dq, dk, dv (every dqkv element is written by exactly one thread)
//   dq[r] = sum_{s <= r} datt[r, s] k_s     dk[r] = sum_{t >= r} datt[t, r] q_t     dv[r] = sum_{t >= r} att[t, r] dout_t
// (datt holds dpreatt * scale, zero above the diagonal; att is zero above the diagonal.) Lanes along d.
@group(0) @binding(1) var<storage, read> bw_qkv: array<VT>;
@group(0) @binding(2) var<storage, read> bw_att: array<f32>;
@group(0) @binding(3) var<storage, read> bw_dout: array<VT>;
@group(0) @binding(4) var<storage, read> bw_datt: array<f32>;
@group(0) @binding(5) var<storage, read_write> bw_dqkv: array<VT>;

@compute @workgroup_size(WD)
fn attention_backward_dqkv(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let hsv = p.hsv;
  let d = wg.z * WD + lid.x;
  if (d >= hsv) { return; }
  let r0 = wg.x * R;
  let bh = wg.y;
  let b = bh / p.NH;
  let h = bh % p.NH;
  let C = p.aOff;               // C in VT units (k part offset)
  let C3 = p.aStride;
  let qb = b * T * C3 + h * hsv + d;     // q[b, 0, h, d]; k at +C, v at +2C
  let db = b * T * C + h * hsv + d;      // dout[b, 0, h, d]
  let hb = bh * T * T;
  let r1 = min(r0 + 1u, T - 1u);
  let r2 = min(r0 + 2u, T - 1u);
  let r3 = min(r0 + 3u, T - 1u);

  // dq: rows r0.., loop s < min(T, r0 + R)
  let send = min(T, r0 + R);
  let p0 = hb + r0 * T;
  let p1 = hb + r1 * T;
  let p2 = hb + r2 * T;
  let p3 = hb + r3 * T;
  var a0 = VT(0.0);
  var a1 = VT(0.0);
  var a2 = VT(0.0);
  var a3 = VT(0.0);
  for (var s = 0u; s < send; s++) {
    let kv = bw_qkv[qb + C + s * C3];
    a0 += bw_datt[p0 + s] * kv;
    a1 += bw_datt[p1 + s] * kv;
    a2 += bw_datt[p2 + s] * kv;
    a3 += bw_datt[p3 + s] * kv;
  }
  let ob = qb + r0 * C3;
  bw_dqkv[ob] = a0;
  if (r0 + 1u < T) { bw_dqkv[ob + C3] = a1; }
  if (r0 + 2u < T) { bw_dqkv[ob + 2u * C3] = a2; }
  if (r0 + 3u < T) { bw_dqkv[ob + 3u * C3] = a3; }

  // dk, dv: columns r0.., loop t >= r0 (entries with t < r are zero)
  var k0 = VT(0.0);
  var k1 = VT(0.0);
  var k2 = VT(0.0);
  var k3 = VT(0.0);
  var v0 = VT(0.0);
  var v1 = VT(0.0);
  var v2 = VT(0.0);
  var v3 = VT(0.0);
  for (var t = r0; t < T; t++) {
    let qv = bw_qkv[qb + t * C3];
    let gv = bw_dout[db + t * C];
    let row = hb + t * T;
    k0 += bw_datt[row + r0] * qv;
    k1 += bw_datt[row + r1] * qv;
    k2 += bw_datt[row + r2] * qv;
    k3 += bw_datt[row + r3] * qv;
    v0 += bw_att[row + r0] * gv;
    v1 += bw_att[row + r1] * gv;
    v2 += bw_att[row + r2] * gv;
    v3 += bw_att[row + r3] * gv;
  }
  bw_dqkv[ob + C] = k0;
  bw_dqkv[ob + 2u * C] = v0;
  if (r0 + 1u < T) { bw_dqkv[ob + C3 + C] = k1; bw_dqkv[ob + C3 + 2u * C] = v1; }
  if (r0 + 2u < T) { bw_dqkv[ob + 2u * C3 + C] = k2; bw_dqkv[ob + 2u * C3 + 2u * C] = v2; }
  if (r0 + 3u < T) { bw_dqkv[ob + 3u * C3 + C] = k3; bw_dqkv[ob + 3u * C3 + 2u * C] = v3; }
}

// =====================================================================================================
// Fast path: T % 4 == 0 and hs % 4 == 0 (every vec4 is 16-byte aligned). On lavapipe every storage load costs about
// the same whether the lanes' addresses are equal, contiguous or scattered (per-lane bounds-checked loads), and a
// vec4 load costs about 2x a scalar one, so these entries load vec4s of att/datt along s as well as of qkv along d,
// and keep a 4 x 4 block (or 4 rows x vec4) per thread: 8 vec4 loads per 64 multiply-adds. hsv = hs / 4, T4 = T / 4.

// ---- scores: dst[b,h,t,s] = scale * a_t . b_s for the 4x4 blocks on or below the diagonal (entries s > t inside a
// diagonal block get values too; the softmax entries ignore and overwrite them). Lanes along s-blocks.
@group(0) @binding(1) var<storage, read> fs_a: array<vec4f>;
@group(0) @binding(2) var<storage, read> fs_b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> fs_dst: array<vec4f>;

@compute @workgroup_size(WS)
fn attention_scores4(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let T4 = T / 4u;
  let tb = wg.x;
  let t0 = tb * 4u;
  let bh = wg.y;
  let b = bh / p.NH;
  let h = bh % p.NH;
  let hsv = p.hsv;
  let a0 = (b * T + t0) * p.aStride + p.aOff + h * hsv;
  let a1 = a0 + p.aStride;
  let a2 = a1 + p.aStride;
  let a3 = a2 + p.aStride;
  let orow = (bh * T + t0) * T4;
  for (var sb = lid.x; sb <= tb; sb += WS) {
    let b0 = (b * T + sb * 4u) * p.bStride + p.bOff + h * hsv;
    let b1 = b0 + p.bStride;
    let b2 = b1 + p.bStride;
    let b3 = b2 + p.bStride;
    var c0 = vec4f(0.0);
    var c1 = vec4f(0.0);
    var c2 = vec4f(0.0);
    var c3 = vec4f(0.0);
    for (var i = 0u; i < hsv; i++) {
      let k0 = fs_b[b0 + i];
      let k1 = fs_b[b1 + i];
      let k2 = fs_b[b2 + i];
      let k3 = fs_b[b3 + i];
      let q0 = fs_a[a0 + i];
      let q1 = fs_a[a1 + i];
      let q2 = fs_a[a2 + i];
      let q3 = fs_a[a3 + i];
      c0 += vec4f(dot(q0, k0), dot(q0, k1), dot(q0, k2), dot(q0, k3));
      c1 += vec4f(dot(q1, k0), dot(q1, k1), dot(q1, k2), dot(q1, k3));
      c2 += vec4f(dot(q2, k0), dot(q2, k1), dot(q2, k2), dot(q2, k3));
      c3 += vec4f(dot(q3, k0), dot(q3, k1), dot(q3, k2), dot(q3, k3));
    }
    let o = orow + sb;
    fs_dst[o] = c0 * p.scale;
    fs_dst[o + T4] = c1 * p.scale;
    fs_dst[o + 2u * T4] = c2 * p.scale;
    fs_dst[o + 3u * T4] = c3 * p.scale;
  }
}

fn causal_mask(sb: u32, t: u32) -> vec4<bool> {
  return vec4u(sb * 4u) + vec4u(0u, 1u, 2u, 3u) <= vec4u(t);
}

// ---- softmax over s <= t in place, zeros for s > t; one thread per row, vec4 along s.
@group(0) @binding(1) var<storage, read_write> fsm: array<vec4f>;

@compute @workgroup_size(64)
fn attention_softmax4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let T4 = T / 4u;
  let row = (wg.y * nwg.x + wg.x) * 64u + lid.x;
  if (row >= p.rows) { return; }
  let t = row % T;
  let nb = t / 4u + 1u;
  let base = row * T4;
  let lowest = vec4f(-3.4028234663852886e38);
  var m4 = lowest;
  for (var j = 0u; j < nb; j++) { m4 = max(m4, select(lowest, fsm[base + j], causal_mask(j, t))); }
  let mx = max(max(m4.x, m4.y), max(m4.z, m4.w));
  var s4 = vec4f(0.0);
  for (var j = 0u; j < nb; j++) {
    let e = select(vec4f(0.0), exp(fsm[base + j] - mx), causal_mask(j, t));
    fsm[base + j] = e;
    s4 += e;
  }
  let inv = 1.0 / ((s4.x + s4.y) + (s4.z + s4.w));
  for (var j = 0u; j < nb; j++) { fsm[base + j] *= inv; }
  for (var j = nb; j < T4; j++) { fsm[base + j] = vec4f(0.0); }
}

// ---- softmax backward in place: datt <- att * (datt - sum_s att*datt) * scale for s <= t, zeros for s > t.
@group(0) @binding(1) var<storage, read> fsb_att: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> fsb_datt: array<vec4f>;

@compute @workgroup_size(64)
fn attention_softmax_backward4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                               @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let T4 = T / 4u;
  let row = (wg.y * nwg.x + wg.x) * 64u + lid.x;
  if (row >= p.rows) { return; }
  let t = row % T;
  let nb = t / 4u + 1u;
  let base = row * T4;
  var d4 = vec4f(0.0);
  for (var j = 0u; j < nb; j++) {
    d4 += select(vec4f(0.0), fsb_att[base + j] * fsb_datt[base + j], causal_mask(j, t));
  }
  let dot = (d4.x + d4.y) + (d4.z + d4.w);
  for (var j = 0u; j < nb; j++) {
    let v = fsb_att[base + j] * (fsb_datt[base + j] - dot) * p.scale;
    fsb_datt[base + j] = select(vec4f(0.0), v, causal_mask(j, t));
  }
  for (var j = nb; j < T4; j++) { fsb_datt[base + j] = vec4f(0.0); }
}

// ---- y[b, t, h, d4] = sum_{s <= t} P[b,h,t,s] x[b, s, h, d4]   (P zero above the diagonal)
// forward out = att @ v; backward dq = datt @ k. Thread = (t-block of 4 rows, d4); x at aStride/aOff, y at
// bStride/bOff. grid (ceil(T4 * hsv / WG4), B * NH).
@group(0) @binding(1) var<storage, read> fav_p: array<vec4f>;
@group(0) @binding(2) var<storage, read> fav_x: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> fav_y: array<vec4f>;

@compute @workgroup_size(WG4)
fn attention_av4(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let T4 = T / 4u;
  let hsv = p.hsv;
  let g = wg.x * WG4 + lid.x;
  if (g >= T4 * hsv) { return; }
  let tb = g / hsv;
  let d = g % hsv;
  let bh = wg.y;
  let b = bh / p.NH;
  let h = bh % p.NH;
  let xs = p.aStride;
  let xb = b * T * xs + p.aOff + h * hsv + d;
  let p0 = (bh * T + tb * 4u) * T4;
  let p1 = p0 + T4;
  let p2 = p1 + T4;
  let p3 = p2 + T4;
  var y0 = vec4f(0.0);
  var y1 = vec4f(0.0);
  var y2 = vec4f(0.0);
  var y3 = vec4f(0.0);
  for (var sb = 0u; sb <= tb; sb++) {
    let xo = xb + sb * 4u * xs;
    let x0 = fav_x[xo];
    let x1 = fav_x[xo + xs];
    let x2 = fav_x[xo + 2u * xs];
    let x3 = fav_x[xo + 3u * xs];
    let w0 = fav_p[p0 + sb];
    let w1 = fav_p[p1 + sb];
    let w2 = fav_p[p2 + sb];
    let w3 = fav_p[p3 + sb];
    y0 += w0.x * x0 + w0.y * x1 + w0.z * x2 + w0.w * x3;
    y1 += w1.x * x0 + w1.y * x1 + w1.z * x2 + w1.w * x3;
    y2 += w2.x * x0 + w2.y * x1 + w2.z * x2 + w2.w * x3;
    y3 += w3.x * x0 + w3.y * x1 + w3.z * x2 + w3.w * x3;
  }
  let ys = p.bStride;
  let yo = (b * T + tb * 4u) * ys + p.bOff + h * hsv + d;
  fav_y[yo] = y0;
  fav_y[yo + ys] = y1;
  fav_y[yo + 2u * ys] = y2;
  fav_y[yo + 3u * ys] = y3;
}

// ---- y[b, s, h, d4] = sum_{t >= s} P[b,h,t,s] x[b, t, h, d4]   (P zero above the diagonal)
// backward dk = datt^T @ q, dv = att^T @ dout. Thread = (s-block of 4 columns, d4); same params as attention_av4.
@compute @workgroup_size(WG4)
fn attention_atv4(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let T4 = T / 4u;
  let hsv = p.hsv;
  let g = wg.x * WG4 + lid.x;
  if (g >= T4 * hsv) { return; }
  let sb = g / hsv;
  let d = g % hsv;
  let bh = wg.y;
  let b = bh / p.NH;
  let h = bh % p.NH;
  let xs = p.aStride;
  let xb = b * T * xs + p.aOff + h * hsv + d;
  let pb = bh * T * T4 + sb;
  var y0 = vec4f(0.0);
  var y1 = vec4f(0.0);
  var y2 = vec4f(0.0);
  var y3 = vec4f(0.0);
  for (var tb = sb; tb < T4; tb++) {
    let t0 = tb * 4u;
    let xo = xb + t0 * xs;
    let x0 = fav_x[xo];
    let x1 = fav_x[xo + xs];
    let x2 = fav_x[xo + 2u * xs];
    let x3 = fav_x[xo + 3u * xs];
    let po = pb + t0 * T4;
    let w0 = fav_p[po];
    let w1 = fav_p[po + T4];
    let w2 = fav_p[po + 2u * T4];
    let w3 = fav_p[po + 3u * T4];
    y0 += w0.x * x0 + w1.x * x1 + w2.x * x2 + w3.x * x3;
    y1 += w0.y * x0 + w1.y * x1 + w2.y * x2 + w3.y * x3;
    y2 += w0.z * x0 + w1.z * x1 + w2.z * x2 + w3.z * x3;
    y3 += w0.w * x0 + w1.w * x1 + w2.w * x2 + w3.w * x3;
  }
  let ys = p.bStride;
  let yo = (b * T + sb * 4u) * ys + p.bOff + h * hsv + d;
  fav_y[yo] = y0;
  fav_y[yo + ys] = y1;
  fav_y[yo + 2u * ys] = y2;
  fav_y[yo + 3u * ys] = y3;
}
