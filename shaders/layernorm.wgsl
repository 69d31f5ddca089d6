// LayerNorm (PyTorch semantics: biased variance, eps inside the sqrt), forward and backward.
// forward:   mean[n] = sum_c x / C;  rstd[n] = 1 / sqrt(sum_c (x - mean)^2 / C + eps)
//            out[n, c] = (x[n, c] - mean[n]) * rstd[n] * weight[c] + bias[c]
//            inp, out: [N, C]; weight, bias: [C]; mean, rstd: [N]
// backward:  xhat = (x - mean) * rstd;  g = dout * weight
//            dinp[n, c] += rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))      (ACCUMULATES: residual stream)
//            dweight[c] += sum_n dout * xhat;   dbias[c] += sum_n dout              (ACCUMULATE)
// Rows: one thread per row, registers only (no workgroup memory: CPU adapters), 64 threads per workgroup,
//       row = (wg.y * num_wg.x + wg.x) * 64 + lid.x. Two passes over the row (mean, then centred variance).
// Column sums are two fixed-order passes: layernorm_dw_partial has one thread per (chunk, column) summing rows
//   chunk*R .. min(N, chunk*R + R) in order into scratch[chunk][2][C] (dweight part, dbias part);
//   layernorm_dw_final has one thread per column summing the chunks in order and adding into dweight (part 0) or
//   dbias (part 1), one dispatch each.
//   R and the chunk count depend only on (N, C): bitwise deterministic.
// Template (src/gpu/wgsl.ts): VEC4 (C % 4 == 0) reads and writes the [., C] tensors as vec4s, Cw = C / 4;
// otherwise f32, Cw = C. mean/rstd are f32 either way.

//#define VEC4 false
//#if VEC4
alias VT = vec4f;
fn hsum(v: VT) -> f32 { return (v.x + v.y) + (v.z + v.w); }
//#else
alias VT = f32;
fn hsum(v: VT) -> f32 { return v; }
//#endif

struct Params { N: u32, Cw: u32, C: f32, eps: f32, R: u32, chunks: u32 }

@group(0) @binding(0) var<uniform> p: Params;

fn gid(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 { return (wg.y * nwg.x + wg.x) * 64u + lid.x; }

// ---- forward
@group(0) @binding(1) var<storage, read> inp: array<VT>;
@group(0) @binding(2) var<storage, read> weight: array<VT>;
@group(0) @binding(3) var<storage, read> bias: array<VT>;
@group(0) @binding(4) var<storage, read_write> out: array<VT>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;

@compute @workgroup_size(64)
fn layernorm_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_id) lid: vec3u) {
  let row = gid(wg, nwg, lid);
  if (row >= p.N) { return; }
  let base = row * p.Cw;
  var s = VT(0.0);
  for (var c = 0u; c < p.Cw; c++) { s += inp[base + c]; }
  let m = hsum(s) / p.C;
  var v = VT(0.0);
  for (var c = 0u; c < p.Cw; c++) { let d = inp[base + c] - m; v += d * d; }
  let r = 1.0 / sqrt(hsum(v) / p.C + p.eps);
  for (var c = 0u; c < p.Cw; c++) {
    out[base + c] = (inp[base + c] - m) * r * weight[c] + bias[c];
  }
  mean[row] = m;
  rstd[row] = r;
}

// ---- backward: dinp (one thread per row)
@group(0) @binding(1) var<storage, read> dout: array<VT>;
@group(0) @binding(2) var<storage, read> binp: array<VT>;
@group(0) @binding(3) var<storage, read> bweight: array<VT>;
@group(0) @binding(4) var<storage, read> bmean: array<f32>;
@group(0) @binding(5) var<storage, read> brstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> dinp: array<VT>;

@compute @workgroup_size(64)
fn layernorm_backward_dinp(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                           @builtin(local_invocation_id) lid: vec3u) {
  let row = gid(wg, nwg, lid);
  if (row >= p.N) { return; }
  let base = row * p.Cw;
  let m = bmean[row];
  let r = brstd[row];
  var sg = VT(0.0);
  var sgx = VT(0.0);
  for (var c = 0u; c < p.Cw; c++) {
    let g = dout[base + c] * bweight[c];
    sg += g;
    sgx += g * ((binp[base + c] - m) * r);
  }
  let mg = hsum(sg) / p.C;
  let mgx = hsum(sgx) / p.C;
  for (var c = 0u; c < p.Cw; c++) {
    let g = dout[base + c] * bweight[c];
    let xhat = (binp[base + c] - m) * r;
    dinp[base + c] += r * (g - mg - xhat * mgx);
  }
}

// ---- backward: column partials (items = chunks * Cw); scratch layout [chunk][2][Cw]
// (reads dout, binp, bmean, brstd above)
@group(0) @binding(3) var<storage, read_write> scratch: array<VT>;

@compute @workgroup_size(64)
fn layernorm_dw_partial(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                        @builtin(local_invocation_id) lid: vec3u) {
  let i = gid(wg, nwg, lid);
  if (i >= p.chunks * p.Cw) { return; }
  let chunk = i / p.Cw;
  let c = i - chunk * p.Cw;
  let r0 = chunk * p.R;
  let r1 = min(p.N, r0 + p.R);
  var dw = VT(0.0);
  var db = VT(0.0);
  for (var row = r0; row < r1; row++) {
    let d = dout[row * p.Cw + c];
    dw += d * ((binp[row * p.Cw + c] - bmean[row]) * brstd[row]);
    db += d;
  }
  scratch[(2u * chunk) * p.Cw + c] = dw;
  scratch[(2u * chunk + 1u) * p.Cw + c] = db;
}

// ---- backward: final column sums (items = Cw). One dispatch per output (dweight from part 0, dbias from part 1):
// dweight and dbias are often views of one gradient buffer, and a dispatch must not bind overlapping writable ranges.
struct FinalParams { N: u32, Cw: u32, C: f32, eps: f32, R: u32, chunks: u32, part: u32 }
@group(0) @binding(0) var<uniform> fp: FinalParams;
@group(0) @binding(1) var<storage, read> fscratch: array<VT>;
@group(0) @binding(2) var<storage, read_write> dparam: array<VT>;

@compute @workgroup_size(64)
fn layernorm_dw_final(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_id) lid: vec3u) {
  let c = gid(wg, nwg, lid);
  if (c >= fp.Cw) { return; }
  var acc = VT(0.0);
  for (var k = 0u; k < fp.chunks; k++) {
    acc += fscratch[(2u * k + fp.part) * fp.Cw + c];
  }
  dparam[c] += acc;
}
