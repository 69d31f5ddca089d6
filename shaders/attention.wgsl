// Causal multi-head self-attention (GPT-2), forward and backward.
//
// Shapes (hs = C / NH, scale = 1 / sqrt(hs)):
//   qkv   [B, T, 3C]     q | k | v along the last dim; head h uses columns h*hs .. (h+1)*hs of each part
//   out   [B, T, C]      head outputs concatenated (before c_proj)
//   att   [B, NH, T, T]  softmax probabilities; entries s > t are written as 0
//   dout  [B, T, C]
//   datt  [B, NH, T, T]  backward scratch: holds dpreatt * scale after attention_backward_rows
//   dqkv  [B, T, 3C]     OVERWRITTEN, every element
//
// forward  (attention_forward, one invocation per row (b, h, t)):
//   preatt[s] = q_t . k_s * scale (s <= t), written raw into att; m = max; e = exp(preatt - m); att = e / sum e;
//   out[b, t, h*hs + d] = sum_{s <= t} att[t, s] * v[s, d]. preatt is never a separate buffer.
// backward pass 1 (attention_backward_rows, one invocation per row (b, h, t)):
//   datt[t, s] = dout_t . v_s;  dpre[t, s] = att[t, s] * (datt[t, s] - sum_s' att[t, s'] datt[t, s'])
//   stored as datt[t, s] = dpre[t, s] * scale (0 for s > t).
// backward pass 2 (attention_backward_cols, one invocation per (b, h, r)), writing row r of dq, dk, dv:
//   dq[r] = sum_{s <= r} datt[r, s] k_s     dk[r] = sum_{t >= r} datt[t, r] q_t     dv[r] = sum_{t >= r} att[t, r] dout_t
//
// Every reduction is a serial loop in a fixed order: no atomics, no workgroup memory, bitwise deterministic.
// Dispatch: workgroup_id.y = b * NH + h, rows t = workgroup_id.x * WG + local_invocation_id.x, so the k/v/q
// addresses a loop reads are the same across a workgroup's lanes.
//
// Vector width: the launcher replaces the block between the VT markers for head sizes that are not a multiple
// of 4 (VT = f32, VW = 1). qkv/out/dout/dqkv are indexed in VT units; att/datt are always scalar.

// VT-BEGIN
alias VT = vec4f;
const VW: u32 = 4u;
fn hsum(x: VT) -> f32 { return (x.x + x.y) + (x.z + x.w); }
// VT-END

override WG: u32 = 64u;

struct Params {
  T: u32,
  NH: u32,
  C: u32,     // in VT units
  hsv: u32,   // head size in VT units
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- forward
@group(0) @binding(1) var<storage, read> qkv: array<VT>;
@group(0) @binding(2) var<storage, read_write> att: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<VT>;

@compute @workgroup_size(WG)
fn attention_forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let t = wg.x * WG + lid.x;
  if (t >= T) { return; }
  let bh = wg.y;
  let b = bh / p.NH;
  let h = bh % p.NH;
  let C = p.C;
  let C3 = 3u * C;
  let hsv = p.hsv;
  let qb = (b * T + t) * C3 + h * hsv;
  let kb = b * T * C3 + C + h * hsv;
  let vb = kb + C;
  let ab = (bh * T + t) * T;

  var mx = -3.4028234663852886e38;
  for (var s = 0u; s <= t; s++) {
    let ks = kb + s * C3;
    var acc = VT(0.0);
    for (var i = 0u; i < hsv; i++) { acc += qkv[qb + i] * qkv[ks + i]; }
    let sc = hsum(acc) * p.scale;
    att[ab + s] = sc;
    mx = max(mx, sc);
  }
  var sum = 0.0;
  for (var s = 0u; s <= t; s++) {
    let e = exp(att[ab + s] - mx);
    att[ab + s] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var s = 0u; s <= t; s++) { att[ab + s] *= inv; }
  for (var s = t + 1u; s < T; s++) { att[ab + s] = 0.0; }

  let ob = (b * T + t) * C + h * hsv;
  for (var i = 0u; i < hsv; i++) {
    var acc = VT(0.0);
    for (var s = 0u; s <= t; s++) { acc += att[ab + s] * qkv[vb + s * C3 + i]; }
    out[ob + i] = acc;
  }
}

// ---- backward pass 1: datt and the softmax backward, per row
@group(0) @binding(1) var<storage, read> b1_qkv: array<VT>;
@group(0) @binding(2) var<storage, read> b1_att: array<f32>;
@group(0) @binding(3) var<storage, read> b1_dout: array<VT>;
@group(0) @binding(4) var<storage, read_write> b1_datt: array<f32>;

@compute @workgroup_size(WG)
fn attention_backward_rows(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let t = wg.x * WG + lid.x;
  if (t >= T) { return; }
  let bh = wg.y;
  let b = bh / p.NH;
  let h = bh % p.NH;
  let C = p.C;
  let C3 = 3u * C;
  let hsv = p.hsv;
  let vb = b * T * C3 + 2u * C + h * hsv;
  let db = (b * T + t) * C + h * hsv;
  let ab = (bh * T + t) * T;

  var dot = 0.0;
  for (var s = 0u; s <= t; s++) {
    let vs = vb + s * C3;
    var acc = VT(0.0);
    for (var i = 0u; i < hsv; i++) { acc += b1_dout[db + i] * b1_qkv[vs + i]; }
    let da = hsum(acc);
    b1_datt[ab + s] = da;
    dot += b1_att[ab + s] * da;
  }
  for (var s = 0u; s <= t; s++) {
    b1_datt[ab + s] = b1_att[ab + s] * (b1_datt[ab + s] - dot) * p.scale;
  }
  for (var s = t + 1u; s < T; s++) { b1_datt[ab + s] = 0.0; }
}

// ---- backward pass 2: dq (row r), dk and dv (column r)
@group(0) @binding(1) var<storage, read> b2_qkv: array<VT>;
@group(0) @binding(2) var<storage, read> b2_att: array<f32>;
@group(0) @binding(3) var<storage, read> b2_dout: array<VT>;
@group(0) @binding(4) var<storage, read> b2_datt: array<f32>;
@group(0) @binding(5) var<storage, read_write> b2_dqkv: array<VT>;

@compute @workgroup_size(WG)
fn attention_backward_cols(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let T = p.T;
  let r = wg.x * WG + lid.x;
  if (r >= T) { return; }
  let bh = wg.y;
  let b = bh / p.NH;
  let h = bh % p.NH;
  let C = p.C;
  let C3 = 3u * C;
  let hsv = p.hsv;
  let base = b * T * C3 + h * hsv;   // q of row 0 for this (b, h); k at +C, v at +2C
  let dbase = b * T * C + h * hsv;   // dout of row 0
  let rb = base + r * C3;
  let arow = (bh * T + r) * T;       // row r of att/datt
  let acol = bh * T * T + r;         // column r of att/datt (stride T)

  for (var i = 0u; i < hsv; i++) {
    var dq = VT(0.0);
    for (var s = 0u; s <= r; s++) { dq += b2_datt[arow + s] * b2_qkv[base + C + s * C3 + i]; }
    var dk = VT(0.0);
    var dv = VT(0.0);
    for (var t = r; t < T; t++) {
      dk += b2_datt[acol + t * T] * b2_qkv[base + t * C3 + i];
      dv += b2_att[acol + t * T] * b2_dout[dbase + t * C + i];
    }
    b2_dqkv[rb + i] = dq;
    b2_dqkv[rb + C + i] = dk;
    b2_dqkv[rb + 2u * C + i] = dv;
  }
}
