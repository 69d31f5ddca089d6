// Strided column add: the first `cols` columns of one row-major matrix added into the first `cols` columns of
// another, row by row. The bottleneck's passthrough (src/model/bottleneck.ts) uses it in both directions:
//   narrow from wide:  z[N, k]  += x[N, C][:, :k]   (dstStride k, srcStride C)
//   wide from narrow:  x[N, C][:, :k] += z[N, k]    (dstStride C, srcStride k)
// dst[r * dstStride + c] += src[r * srcStride + c] for r < rows, c < cols (ACCUMULATE). One thread per element,
// i = (wg.y * num_wg.x + wg.x) * 256 + lid.x; each output is written by exactly one thread (deterministic).

struct Params { rows: u32, cols: u32, dstStride: u32, srcStride: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn coladd(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_id) lid: vec3u) {
  let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let c = i - r * p.cols;
  dst[r * p.dstStride + c] += src[r * p.srcStride + c];
}
