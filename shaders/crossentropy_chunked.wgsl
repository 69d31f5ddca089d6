// Softmax cross-entropy over the vocabulary in chunks of rows of wte (the vocabulary-chunked LM head,
// src/model/lm-head.ts): no [N, V] tensor exists, only one chunk's logits [N, R] at a time (vocabulary ids
// v0 .. v0 + R). Per row, stats [N, 3] hold (max, sum of exp(x - max), the target's logit).
// crossentropy_chunk_forward: logits [N, R], targets [N] -> stats (updated), losses [N] (on the last chunk)
//   one workgroup of WG threads per row (row = wg.y * num_wg.x + wg.x). Thread t keeps an online (max, sum) over
//   columns t, t + WG, ...; the WG pairs merge by a fixed tree; thread 0 merges the chunk's pair into the running one
//   (chunks are launched in vocabulary order, so the order is fixed by (N, V, R, WG)) and takes the target's logit
//   when the target lies in the chunk. The first chunk sets the stats (target logit NaN until found); the last writes
//   losses = log(sum) - (x[target] - max) (log-sum-exp form, as crossentropy_forward). target >= V: NaN loss.
// crossentropy_chunk_backward: stats, targets -> dlogits [N, R] IN PLACE over the chunk's logits:
//   (exp(x - max) / sum - onehot(target - v0)) * scale. One workgroup of WB threads per row; a row whose target
//   >= V gets NaN everywhere (as crossentropy_backward).

struct Params {
  N: u32,
  R: u32, // rows of this chunk (columns of the logits)
  V: u32, // the whole vocabulary
  v0: u32, // the chunk's first vocabulary id
  flags: u32, // forward: bit 0 first chunk, bit 1 last chunk
  scale: f32,
  nan_bits: u32, // 0x7fc00000: a NaN the compiler cannot fold away
}

@group(0) @binding(0) var<uniform> p: Params;

// Template knobs (src/gpu/wgsl.ts), set per adapter and R by the launcher:
//#define WG 64
//#define WB 64
const WG: u32 = {{WG}}u; // forward threads per row: a power of two, at most 256
const WB: u32 = {{WB}}u; // backward threads per row: at most 256

const LOWEST: f32 = -3.4028234663852886e38;

var<workgroup> sm_m: array<f32, 256>;
var<workgroup> sm_s: array<f32, 256>;

// ---- forward (one chunk)
@group(0) @binding(1) var<storage, read> ck_logits: array<f32>;
@group(0) @binding(2) var<storage, read> ck_targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> ck_stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> ck_losses: array<f32>;

@compute @workgroup_size(WG)
fn crossentropy_chunk_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                              @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.N) { return; } // uniform per workgroup
  let t = lid.x;
  let base = row * p.R;
  var m = LOWEST;
  var s = 0.0;
  for (var c = t; c < p.R; c += WG) {
    let x = ck_logits[base + c];
    if (x > m) {
      s = s * exp(m - x) + 1.0;
      m = x;
    } else {
      s += exp(x - m);
    }
  }
  sm_m[t] = m;
  sm_s[t] = s;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (t < h) {
      let m1 = sm_m[t];
      let m2 = sm_m[t + h];
      let mm = max(m1, m2);
      sm_s[t] = sm_s[t] * exp(m1 - mm) + sm_s[t + h] * exp(m2 - mm);
      sm_m[t] = mm;
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    var mx = sm_m[0];
    var sum = sm_s[0];
    var tl = bitcast<f32>(p.nan_bits);
    if ((p.flags & 1u) == 0u) {
      let m0 = ck_stats[3u * row];
      let s0 = ck_stats[3u * row + 1u];
      tl = ck_stats[3u * row + 2u];
      let mm = max(m0, mx);
      sum = s0 * exp(m0 - mm) + sum * exp(mx - mm);
      mx = mm;
    }
    let tgt = ck_targets[row];
    if (tgt >= p.v0 && tgt - p.v0 < p.R) {
      tl = ck_logits[base + (tgt - p.v0)];
    }
    ck_stats[3u * row] = mx;
    ck_stats[3u * row + 1u] = sum;
    ck_stats[3u * row + 2u] = tl;
    if ((p.flags & 2u) != 0u) {
      if (tgt < p.V) {
        ck_losses[row] = log(sum) - (tl - mx);
      } else {
        ck_losses[row] = bitcast<f32>(p.nan_bits);
      }
    }
  }
}

// ---- backward (one chunk, in place)
@group(0) @binding(1) var<storage, read> ck_stats_in: array<f32>;
@group(0) @binding(2) var<storage, read> ck_targets_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> ck_dlogits: array<f32>;

@compute @workgroup_size(WB)
fn crossentropy_chunk_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                               @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.N) { return; }
  let base = row * p.R;
  let tgt = ck_targets_in[row];
  if (tgt >= p.V) {
    for (var c = lid.x; c < p.R; c += WB) {
      ck_dlogits[base + c] = bitcast<f32>(p.nan_bits);
    }
    return;
  }
  let mx = ck_stats_in[3u * row];
  let sum = ck_stats_in[3u * row + 1u];
  for (var c = lid.x; c < p.R; c += WB) {
    let x = ck_dlogits[base + c];
    ck_dlogits[base + c] = (exp(x - mx) / sum - select(0.0, 1.0, c + p.v0 == tgt)) * p.scale;
  }
}
