// Matrix multiply with f16 operands (needs the device feature 'shader-f16'; src/gpu/ops/matmul-f16.ts launches it).
//
//   out[M, N] (= or +=) alpha * (op(a)[M, K] @ op(b)[K, N]) (+ bias[N] broadcast over rows)
//     op(a) = a stored [M, K], or (TRANS_A) a stored [K, M]
//     op(b) = b stored [K, N], or (TRANS_B) b stored [N, K]
//   a, b and bias are f16; out is f32 (read too with ACCUM). alpha (SCALED; else 1) is an f32 power of two: the f16
//   backward of src/model/half-linears.ts scales an operand up by 2^k against f16 underflow and the result back down.
//
// Storage: a, b and bias are bound as `array<f16>` (or `array<vec4<f16>>`, below) over the packed 'u32' tensors of
// src/gpu/f16.ts (two halves per word, half 2i in the low 16 bits): that layout is byte for byte an array<f16>, so
// the kernel indexes halves directly instead of unpacking words by hand, and the odd-count pad half keeps every
// binding a whole number of 4-byte words (the runtime binds tensors in 16-byte multiples anyway). Nothing is read
// past M*K, K*N or N halves: row and column indices are clamped into range for loads (those lanes compute values
// that are never stored), and k never leaves [0, K).
//
// Arithmetic: every product f32(a) * f32(b) is exact in f32 (11-bit x 11-bit significands fit f32's 24; the
// smallest product of subnormal halves, 2^-48, is a normal f32), so fma(a, b, acc) and acc + a*b round identically
// (once, in the add) whether or not the backend fuses. Each output is one thread's accumulator over k = 0..K-1 in
// ascending order, then (SCALED) times alpha, exact for a power of two unless the result leaves f32's normal range,
// then + bias, then + the prior out (ACCUM): bitwise reproducible (no atomics, no split-K), and
// within (K + 2) * 2^-24 * (sum_k |a_mk b_kn| + |bias_n| + |prior|) of the exact result (tests/kernels/matmul-f16.test.ts).
//
// Blocking: each thread owns a 4x4 block of outputs (rows 4*gid.y.., columns 4*gid.x..), 8x8 threads per workgroup.
// K runs in steps of 4: the 4x4 blocks of op(a) and op(b) are gathered as matrices (column u = step k + u), then a
// scalar tail. VEC_A / VEC_B bind an operand as vec4<f16> where its layout allows (one load per 4 halves, which is
// what decides speed on CPU adapters): plain a needs K % 4 == 0 (a row's 4 k), transposed a needs M % 4 == 0 (the
// block's 4 rows at one k; the block's first row is a multiple of 4); plain b needs N % 4 == 0 (4 columns at one
// k), transposed b needs K % 4 == 0 (a column's 4 k).
// Template (src/gpu/wgsl.ts): one kernel per case. Bindings: params, a, b, bias (only with HAS_BIAS), out.

enable f16;

//#define TRANS_A false
//#define TRANS_B false
//#define HAS_BIAS false
//#define ACCUM false
//#define VEC_A false
//#define VEC_B false
//#define SCALED false

struct Params { M: u32, N: u32, K: u32, alpha: f32 }

@group(0) @binding(0) var<uniform> p: Params;
//#if VEC_A
@group(0) @binding(1) var<storage, read> a: array<vec4<f16>>;
//#else
@group(0) @binding(1) var<storage, read> a: array<f16>;
//#endif
//#if VEC_B
@group(0) @binding(2) var<storage, read> b: array<vec4<f16>>;
//#else
@group(0) @binding(2) var<storage, read> b: array<f16>;
//#endif
//#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<f16>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
//#else
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
//#endif

// Half number i of a / b in storage order, as f32.
fn a_at(i: u32) -> f32 {
//#if VEC_A
  return f32(a[i >> 2u][i & 3u]);
//#else
  return f32(a[i]);
//#endif
}
fn b_at(i: u32) -> f32 {
//#if VEC_B
  return f32(b[i >> 2u][i & 3u]);
//#else
  return f32(b[i]);
//#endif
}

// op(a)[m, k] and op(b)[k, n]; callers keep m < M, k < K, n < N.
fn load_a(m: u32, k: u32) -> f32 {
//#if TRANS_A
  return a_at(k * p.M + m);
//#else
  return a_at(m * p.K + k);
//#endif
}
fn load_b(k: u32, n: u32) -> f32 {
//#if TRANS_B
  return b_at(n * p.K + k);
//#else
  return b_at(k * p.N + n);
//#endif
}

// op(a) at rows rr (clamped) and k..k+3 (k + 3 < K): column u holds the 4 rows at k + u.
fn a_block(rr: vec4u, k: u32) -> mat4x4f {
//#if VEC_A
//#if TRANS_A
  let s = p.M >> 2u;
  let g = rr.x >> 2u;
  return mat4x4f(vec4f(a[k * s + g]), vec4f(a[(k + 1u) * s + g]), vec4f(a[(k + 2u) * s + g]), vec4f(a[(k + 3u) * s + g]));
//#else
  let s = p.K >> 2u;
  let q = k >> 2u;
  return transpose(mat4x4f(vec4f(a[rr.x * s + q]), vec4f(a[rr.y * s + q]), vec4f(a[rr.z * s + q]), vec4f(a[rr.w * s + q])));
//#endif
//#else
  return mat4x4f(
    vec4f(load_a(rr.x, k), load_a(rr.y, k), load_a(rr.z, k), load_a(rr.w, k)),
    vec4f(load_a(rr.x, k + 1u), load_a(rr.y, k + 1u), load_a(rr.z, k + 1u), load_a(rr.w, k + 1u)),
    vec4f(load_a(rr.x, k + 2u), load_a(rr.y, k + 2u), load_a(rr.z, k + 2u), load_a(rr.w, k + 2u)),
    vec4f(load_a(rr.x, k + 3u), load_a(rr.y, k + 3u), load_a(rr.z, k + 3u), load_a(rr.w, k + 3u)));
//#endif
}

// op(b) at k..k+3 (k + 3 < K) and columns cc (clamped): column u holds the 4 columns at k + u.
fn b_block(cc: vec4u, k: u32) -> mat4x4f {
//#if VEC_B
//#if TRANS_B
  let s = p.K >> 2u;
  let q = k >> 2u;
  return transpose(mat4x4f(vec4f(b[cc.x * s + q]), vec4f(b[cc.y * s + q]), vec4f(b[cc.z * s + q]), vec4f(b[cc.w * s + q])));
//#else
  let s = p.N >> 2u;
  let g = cc.x >> 2u;
  return mat4x4f(vec4f(b[k * s + g]), vec4f(b[(k + 1u) * s + g]), vec4f(b[(k + 2u) * s + g]), vec4f(b[(k + 3u) * s + g]));
//#endif
//#else
  return mat4x4f(
    vec4f(load_b(k, cc.x), load_b(k, cc.y), load_b(k, cc.z), load_b(k, cc.w)),
    vec4f(load_b(k + 1u, cc.x), load_b(k + 1u, cc.y), load_b(k + 1u, cc.z), load_b(k + 1u, cc.w)),
    vec4f(load_b(k + 2u, cc.x), load_b(k + 2u, cc.y), load_b(k + 2u, cc.z), load_b(k + 2u, cc.w)),
    vec4f(load_b(k + 3u, cc.x), load_b(k + 3u, cc.y), load_b(k + 3u, cc.z), load_b(k + 3u, cc.w)));
//#endif
}

fn store(m: u32, n: u32, v: f32) {
  var r = v;
//#if SCALED
  r = v * p.alpha;
//#endif
//#if HAS_BIAS
  r += f32(bias[n]);
//#endif
  let i = m * p.N + n;
//#if ACCUM
  r += out[i];
//#endif
  out[i] = r;
}

fn store_row(m: u32, col0: u32, v: vec4f) {
  if (m >= p.M) { return; }
  for (var j = 0u; j < 4u; j++) {
    if (col0 + j < p.N) { store(m, col0 + j, v[j]); }
  }
}

@compute @workgroup_size(8, 8)
fn matmul_f16(@builtin(global_invocation_id) gid: vec3u) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  let rr = min(vec4u(row0) + vec4u(0u, 1u, 2u, 3u), vec4u(M - 1u));
  let cc = min(vec4u(col0) + vec4u(0u, 1u, 2u, 3u), vec4u(N - 1u));
  // acc<r>: row row0 + r, columns col0..col0+3; k ascending for every one of them.
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  var k = 0u;
  for (; k + 4u <= K; k += 4u) {
    let am = a_block(rr, k);
    let bm = b_block(cc, k);
    for (var u = 0u; u < 4u; u++) {
      let bu = bm[u];
      let au = am[u];
      acc0 = fma(vec4f(au.x), bu, acc0);
      acc1 = fma(vec4f(au.y), bu, acc1);
      acc2 = fma(vec4f(au.z), bu, acc2);
      acc3 = fma(vec4f(au.w), bu, acc3);
    }
  }
  for (; k < K; k++) {
    let bu = vec4f(load_b(k, cc.x), load_b(k, cc.y), load_b(k, cc.z), load_b(k, cc.w));
    acc0 = fma(vec4f(load_a(rr.x, k)), bu, acc0);
    acc1 = fma(vec4f(load_a(rr.y, k)), bu, acc1);
    acc2 = fma(vec4f(load_a(rr.z, k)), bu, acc2);
    acc3 = fma(vec4f(load_a(rr.w, k)), bu, acc3);
  }
  store_row(row0, col0, acc0);
  store_row(row0 + 1u, col0, acc1);
  store_row(row0 + 2u, col0, acc2);
  store_row(row0 + 3u, col0, acc3);
}
