// Matrix multiply, forward and the backward products (all are the same op with transposes), plus bias backward.
//
//   out[M, N] (= or +=) op(a)[M, K] @ op(b)[K, N] (+ bias[N] broadcast over rows)
//     op(a) = a stored [M, K], or (TRANS_A) a stored [K, M]
//     op(b) = b stored [K, N], or (TRANS_B) b stored [N, K]
//   bias_backward: dbias[N] += sum over m of dout[m, n]          dout: [M, N]
//
// Model uses (N_tok = B*T):  forward   out[N_tok, OUT] = inp[N_tok, IN] @ W[IN, OUT] + bias       plain
//                            backward  dinp[N_tok, IN] = dout[N_tok, OUT] @ W^T                  TRANS_B
//                                      dW[IN, OUT]    += inp^T @ dout                            TRANS_A, ACCUM
//
// Variants (src/gpu/ops/matmul.ts launches them; src/gpu/autotune.ts picks one per adapter and shape):
//   matmul_naive  one thread per output, 16x16 threads per workgroup (reference / fallback).
//   matmul_tiled  workgroup-memory tiles: 16x16 threads, 64x64 outputs per workgroup, 4x4 per thread,
//                 K in slabs of 16 staged through workgroup memory (what real GPUs want).
//   rb*           register-blocked, no workgroup memory, vec4 loads (what CPU adapters want). Their code is
//                 generated per block shape and per transpose/alignment case by `registerBlockedWgsl` in
//                 src/gpu/ops/matmul.ts (unrolled register blocks: a generator rather than a template, made
//                 through the same kernelVariants mechanism as this file's cases).
//   rb*sg         the same, with A's values shared across the SIMD lanes by subgroupShuffle instead of every lane
//                 loading them (needs the device feature 'subgroups'). On lavapipe every buffer load costs ~5-10 ns
//                 per invocation whatever its width, uniformity or address space, so loads per FMA decide speed.
//   rb*tex        the same with B read from a 2D rgba32float texture (a copy of b made before the launch) by
//                 textureLoad: llvmpipe fetches a texel for all SIMD lanes with gathers, where a storage load at
//                 per-lane addresses is a loop over the lanes. Where B's rows are 256-byte aligned (plain B: N % 64,
//                 transposed B: K % 64), else the buffer block.
// The register blocks also accumulate the column sums of a plain b into dbias[N] when asked (MatmulCase.biasGrad:
// the bias gradient of dW += x^T @ dy, k ascending from 0 as bias_backward sums, stored by the first row block's
// threads), saving bias_backward's launch; after naive and tiled the launcher adds a bias_backward launch.
//
// Every variant reads any M, N, K (including 1), never outside a binding (indices are clamped, out-of-range
// products are zeroed or never stored) and writes every output. Each output is one thread's fixed-order loop over
// k = 0..K-1, so results are bitwise reproducible (no atomics, no split-K).
// Template (src/gpu/wgsl.ts): TRANS_A, TRANS_B, HAS_BIAS, ACCUM select the case (one kernel per case and variant).
// Bindings (read from the source per case): params, a, b, bias (only with HAS_BIAS), out.

//#define TRANS_A false
//#define TRANS_B false
//#define HAS_BIAS false
//#define ACCUM false

struct Params { M: u32, N: u32, K: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
//#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
//#else
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
//#endif

// op(a)[m, k] and op(b)[k, n]; callers keep m < M, k < K, n < N.
fn load_a(m: u32, k: u32) -> f32 {
//#if TRANS_A
  return a[k * p.M + m];
//#else
  return a[m * p.K + k];
//#endif
}
fn load_b(k: u32, n: u32) -> f32 {
//#if TRANS_B
  return b[n * p.K + k];
//#else
  return b[k * p.N + n];
//#endif
}
fn store(m: u32, n: u32, v: f32) {
  var r = v;
//#if HAS_BIAS
  r += bias[n];
//#endif
  let i = m * p.N + n;
//#if ACCUM
  r += out[i];
//#endif
  out[i] = r;
}

// ---- naive: one thread per output
@compute @workgroup_size(16, 16)
fn matmul_naive(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  let m = gid.y;
  if (m >= p.M || n >= p.N) { return; }
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) {
    acc = fma(load_a(m, k), load_b(k, n), acc);
  }
  store(m, n, acc);
}

// ---- tiled: workgroup memory, 64x64 outputs per workgroup, 4x4 per thread (rows ty + 16i, cols tx + 16j)
const TM = 64u;
const TN = 64u;
const TK = 16u;
var<workgroup> tileA: array<f32, 1024>; // [TK][TM]
var<workgroup> tileB: array<f32, 1024>; // [TK][TN]

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
                @builtin(local_invocation_index) li: u32) {
  let m0 = wg.y * TM;
  let n0 = wg.x * TN;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    // 1024 elements of each tile, 4 per thread. Consecutive threads take consecutive m (or n) when that is the
    // contiguous direction in memory, else consecutive k.
    for (var j = 0u; j < 4u; j++) {
      let e = j * 256u + li;
      var mm: u32; var ka: u32;
//#if TRANS_A
      mm = e % TM; ka = e / TM;
//#else
      ka = e % TK; mm = e / TK;
//#endif
      var va = 0.0;
      if (m0 + mm < p.M && k0 + ka < p.K) { va = load_a(m0 + mm, k0 + ka); }
      tileA[ka * TM + mm] = va;
      var nn: u32; var kb: u32;
//#if TRANS_B
      kb = e % TK; nn = e / TK;
//#else
      nn = e % TN; kb = e / TN;
//#endif
      var vb = 0.0;
      if (n0 + nn < p.N && k0 + kb < p.K) { vb = load_b(k0 + kb, n0 + nn); }
      tileB[kb * TN + nn] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { av[i] = tileA[kk * TM + lid.y + 16u * i]; }
      for (var j = 0u; j < 4u; j++) { bv[j] = tileB[kk * TN + lid.x + 16u * j]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + 16u * j;
      if (m < p.M && n < p.N) { store(m, n, acc[i * 4u + j]); }
    }
  }
}

// ---- bias backward: dbias[n] += sum_m dout[m, n], one thread per column, serial over m (fixed order)
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;

@compute @workgroup_size(64)
fn bias_backward(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  if (n >= p.N) { return; }
  var s = 0.0;
  for (var m = 0u; m < p.M; m++) { s += dout[m * p.N + n]; }
  dbias[n] = dbias[n] + s;
}
