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
// forward  = attention_scores (att <- q.k * scale, s <= t) -> attention_softmax (in place, zeros s > t)
//            -> attention_av (out = att @ v)
// backward = attention_scores (datt <- dout.v, s <= t) -> attention_softmax_backward (datt <- dpreatt * scale)
//            -> attention_backward_dqkv (dq = datt @ k, dk = datt^T @ q, dv = att^T @ dout)
//
// CPU adapters (lavapipe, SwiftShader) run a workgroup's lanes as SIMD lanes. Every matmul-like entry keeps R = 4
// rows of outputs per thread in registers and makes one operand the same for all lanes of a workgroup
// (workgroup-uniform loads) while lanes walk the other operand; no workgroup memory, no barriers, no atomics.
// Every reduction is a serial loop in a fixed order: bitwise deterministic.
//
// Vector type: qkv/out/dout/dqkv are indexed in VT units. The launcher replaces the CONFIG block with VT = f32 for
// head sizes that are not a multiple of 4; att/datt are always scalar.

// CONFIG-BEGIN (replaced per variant by src/gpu/ops/attention.ts; these defaults are the vec4 variant)
alias VT = vec4f;
fn hsum(x: VT) -> f32 { return (x.x + x.y) + (x.z + x.w); }
// CONFIG-END

const R: u32 = 4u;           // rows (or columns) per thread, held in registers
override WS: u32 = 32u;      // lanes along s in attention_scores
override WD: u32 = 8u;       // lanes along d (VT units) in attention_av / attention_backward_dqkv

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
@group(0) @binding(1) var<storage, read> sa: array<VT>;
@group(0) @binding(2) var<storage, read> sb: array<VT>;
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
      let kv = sb[bs + i];
      c0 += sa[a0 + i] * kv;
      c1 += sa[a1 + i] * kv;
      c2 += sa[a2 + i] * kv;
      c3 += sa[a3 + i] * kv;
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
