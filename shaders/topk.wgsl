// Top-k by magnitude, deterministic, no atomics (docs/compression.md "Wire formats", src/compress/topk-kernels.ts).
// Select the k largest |x| of x [n]; ties at the threshold go to the lower index. |x| is compared as its f32 bits
// with the sign cleared (monotone in |x| for every finite value; NaN sorts above inf, so a NaN is always selected and
// the host refuses it).
//
// 1. Threshold by bisection on the bits: state = [lo, hi, cnt_hi]: invariant count(|x| >= lo) >= k,
//    count(|x| >= hi) < k; starting at [0, 2^31) 31 rounds of (topk_count over chunks, topk_step on one thread)
//    leave hi = lo + 1, so T = lo is the k-th largest magnitude.
// 2. topk_tally: per chunk, gt = count(|x| > T), eq = count(|x| == T).
// 3. topk_plan (one thread, chunks in order): need = k - sum(gt) ties are taken, lowest index first; plan[c] =
//    (output position of chunk c's first pick, ties chunk c takes).
// 4. topk_compact: each chunk walks its elements in order and writes (index, value bits) at its positions:
//    sel_out[0 .. k) = indices (strictly increasing), sel_out[k .. 2k) = values (the exact f32 bits of x).
// topk_zero + topk_scatter decode: out[i] = 0 for i < n, then out[idx[j]] = value[j] (ACC: out[idx[j]] += value[j]).
// Chunks: chunk c owns x[c*chunk .. min(n, (c+1)*chunk)); one thread per chunk, serial inside (fixed order).
// Threads: 256 per workgroup, i = (wg.y * num_wg.x + wg.x) * 256 + lid.x.

//#define ACC false

struct Params {
  n: u32,
  chunk: u32,
  nchunks: u32,
  k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn flat_id(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

fn magnitude(bits: u32) -> u32 {
  return bits & 0x7fffffffu;
}

@group(0) @binding(1) var<storage, read> sel_x: array<u32>;
@group(0) @binding(2) var<storage, read> state_in: array<u32>;

fn chunk_end(c: u32) -> u32 {
  return min(p.n, (c + 1u) * p.chunk);
}

// ---- 1a. count(|x| >= mid) per chunk, mid = lo + (hi - lo) / 2
@group(0) @binding(3) var<storage, read_write> counts: array<u32>;

@compute @workgroup_size(256)
fn topk_count(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = flat_id(wg, nwg, lid);
  if (c >= p.nchunks) { return; }
  let mid = state_in[0] + (state_in[1] - state_in[0]) / 2u;
  var s = 0u;
  for (var i = c * p.chunk; i < chunk_end(c); i++) {
    s += select(0u, 1u, magnitude(sel_x[i]) >= mid);
  }
  counts[c] = s;
}

// ---- 1b. one bisection step (one thread)
@group(0) @binding(1) var<storage, read> counts_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;

@compute @workgroup_size(1)
fn topk_step() {
  let lo = state[0];
  let hi = state[1];
  if (hi - lo <= 1u) { return; }
  let mid = lo + (hi - lo) / 2u;
  var s = 0u;
  for (var c = 0u; c < p.nchunks; c++) { s += counts_in[c]; }
  if (s >= p.k) { state[0] = mid; } else { state[1] = mid; state[2] = s; }
}

// ---- 2. per chunk: counts[2c] = #(|x| > T), counts[2c + 1] = #(|x| == T), T = state[0]
@compute @workgroup_size(256)
fn topk_tally(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = flat_id(wg, nwg, lid);
  if (c >= p.nchunks) { return; }
  let t = state_in[0];
  var gt = 0u;
  var eq = 0u;
  for (var i = c * p.chunk; i < chunk_end(c); i++) {
    let m = magnitude(sel_x[i]);
    gt += select(0u, 1u, m > t);
    eq += select(0u, 1u, m == t);
  }
  counts[2u * c] = gt;
  counts[2u * c + 1u] = eq;
}

// ---- 3. the plan (one thread): plan[2c] = first output position of chunk c, plan[2c + 1] = ties it takes
@group(0) @binding(2) var<storage, read_write> plan: array<u32>;

@compute @workgroup_size(1)
fn topk_plan() {
  var gt_total = 0u;
  for (var c = 0u; c < p.nchunks; c++) { gt_total += counts_in[2u * c]; }
  let need = p.k - gt_total;
  var pos = 0u;
  var ties_before = 0u;
  for (var c = 0u; c < p.nchunks; c++) {
    let eq = counts_in[2u * c + 1u];
    var take = 0u;
    if (ties_before < need) { take = min(need - ties_before, eq); }
    plan[2u * c] = pos;
    plan[2u * c + 1u] = take;
    pos += counts_in[2u * c] + take;
    ties_before += eq;
  }
}

// ---- 4. compaction: sel_out [2k] = k indices then k value bits
@group(0) @binding(3) var<storage, read> plan_in: array<u32>;
@group(0) @binding(4) var<storage, read_write> sel_out: array<u32>;

@compute @workgroup_size(256)
fn topk_compact(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = flat_id(wg, nwg, lid);
  if (c >= p.nchunks) { return; }
  let t = state_in[0];
  var pos = plan_in[2u * c];
  var ties_left = plan_in[2u * c + 1u];
  for (var i = c * p.chunk; i < chunk_end(c); i++) {
    let bits = sel_x[i];
    let m = magnitude(bits);
    var take = m > t;
    if (m == t && ties_left > 0u) {
      take = true;
      ties_left -= 1u;
    }
    if (take) {
      sel_out[pos] = i;
      sel_out[p.k + pos] = bits;
      pos += 1u;
    }
  }
}

// ---- decode: zero the first n, then scatter the k (index, value) pairs
@group(0) @binding(1) var<storage, read_write> zero_out: array<u32>;

@compute @workgroup_size(256)
fn topk_zero(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  zero_out[i] = 0u;
}

@group(0) @binding(1) var<storage, read> pairs: array<u32>;
@group(0) @binding(2) var<storage, read_write> scatter_bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> scatter_acc: array<f32>;

@compute @workgroup_size(256)
fn topk_scatter(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let j = flat_id(wg, nwg, lid);
  if (j >= p.k) { return; }
  let i = pairs[j];
  if (i >= p.n) { return; } // validated on the host; never write outside the tensor
//#if ACC
  scatter_acc[i] = scatter_acc[i] + bitcast<f32>(pairs[p.k + j]);
//#else
  scatter_bits[i] = pairs[p.k + j];
//#endif
}
