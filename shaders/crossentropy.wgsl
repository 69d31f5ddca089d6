// Softmax cross-entropy over the vocabulary (forward, mean/sum reduction, backward).
// crossentropy_forward: logits [N, V], targets [N] (u32)  ->  probs [N, V], losses [N]
//   one workgroup of WG threads per row (row = wg.y * num_wg.x + wg.x, so N > 65535 folds into y). Thread t owns
//   columns t, t + WG, t + 2 WG, ... and keeps an online (max, sum exp) pair; the WG pairs are merged by a fixed
//   tree in workgroup memory. probs = exp(x - max) / sum; loss = log(sum) - (x[target] - max) (log-sum-exp form:
//   finite even when probs[target] underflows). target >= V: loss = NaN, nothing out of bounds is touched.
// loss_reduce: losses [N] -> loss [1] = sum(losses) * scale. One workgroup of 256 threads: thread t sums
//   losses[t], losses[t + 256], ... serially, then a fixed tree.
// crossentropy_backward: probs [N, V], targets [N] -> dlogits [N, V] = (probs - onehot(target)) * scale
//   (OVERWRITE). One workgroup of WB threads per row (rows fold into y as above), thread t writes columns t,
//   t + WB, ...: no integer division per element, the target is read once per row. A row whose target >= V gets
//   NaN everywhere.
// All reductions have a fixed order that depends only on (N, V, WG): no atomics. WG and WB are picked per adapter
// and V by the launcher (CPU adapters want about one SIMD width of threads: barriers are expensive there).

struct Params {
  N: u32,
  V: u32,
  scale: f32,
  nan_bits: u32, // 0x7fc00000: a NaN the compiler cannot fold away
}

@group(0) @binding(0) var<uniform> p: Params;

// Template knobs (src/gpu/wgsl.ts), set per adapter and V by the launcher:
//#define WG 64
//#define WB 64
const WG: u32 = {{WG}}u; // forward threads per row: a power of two, at most 256
const WB: u32 = {{WB}}u; // backward threads per row: at most 256

const LOWEST: f32 = -3.4028234663852886e38;

var<workgroup> sm_m: array<f32, 256>;
var<workgroup> sm_s: array<f32, 256>;

// ---- forward
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> losses: array<f32>;

@compute @workgroup_size(WG)
fn crossentropy_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                        @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.N) { return; } // uniform per workgroup
  let t = lid.x;
  let base = row * p.V;
  var m = LOWEST;
  var s = 0.0;
  for (var c = t; c < p.V; c += WG) {
    let x = logits[base + c];
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
  let mx = sm_m[0];
  let sum = sm_s[0];
  for (var c = t; c < p.V; c += WG) {
    probs[base + c] = exp(logits[base + c] - mx) / sum;
  }
  if (t == 0u) {
    let tgt = targets[row];
    if (tgt < p.V) {
      losses[row] = log(sum) - (logits[base + tgt] - mx);
    } else {
      losses[row] = bitcast<f32>(p.nan_bits);
    }
  }
}

// ---- mean (or any scaled) reduction of the per-row losses
@group(0) @binding(1) var<storage, read> losses_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss_out: array<f32>;

@compute @workgroup_size(256)
fn loss_reduce(@builtin(local_invocation_id) lid: vec3u) {
  let t = lid.x;
  var s = 0.0;
  for (var i = t; i < p.N; i += 256u) {
    s += losses_in[i];
  }
  sm_s[t] = s;
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (t < h) {
      sm_s[t] = sm_s[t] + sm_s[t + h];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    loss_out[0] = sm_s[0] * p.scale;
  }
}

// ---- backward
@group(0) @binding(1) var<storage, read> probs_in: array<f32>;
@group(0) @binding(2) var<storage, read> targets_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;

@compute @workgroup_size(WB)
fn crossentropy_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                         @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.N) { return; }
  let base = row * p.V;
  let tgt = targets_in[row];
  if (tgt >= p.V) {
    for (var c = lid.x; c < p.V; c += WB) {
      dlogits[base + c] = bitcast<f32>(p.nan_bits);
    }
    return;
  }
  for (var c = lid.x; c < p.V; c += WB) {
    dlogits[base + c] = (probs_in[base + c] - select(0.0, 1.0, c == tgt)) * p.scale;
  }
}
