// Residual add, forward and backward.
// forward:   out[i] = a[i] + b[i]         a, b, out: [n]
// backward:  the gradient reaches both branches unchanged. The model accumulates it into each branch's
//            gradient with `accumulate`: dst[i] += src[i]   src, dst: [n]
// Elementwise kernels use 256 threads and i = (wg.y * num_wg.x + wg.x) * 256 + lid.x, so a large n folds into y.

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;

// ---- forward
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn residual_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_id) lid: vec3u) {
  let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
  if (i >= p.n) { return; }
  out[i] = a[i] + b[i];
}

// ---- backward (gradient accumulation)
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn accumulate(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid: vec3u) {
  let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
  if (i >= p.n) { return; }
  dst[i] = dst[i] + src[i];
}
