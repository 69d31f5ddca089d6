// Local-steps replica sync (DiLoCo / IOTA, docs/compression.md "Local steps"): the error-feedback bookkeeping around
// the sync codec and the outer Nesterov step. Elementwise over n, 256 threads, i = (wg.y * num_wg.x + wg.x) * 256 + lid.x.
//   outer_pseudo_grad:  ef[i] = ef[i] + (sync[i] - params[i])        pseudo-gradient into the error-feedback buffer
//   outer_sub:          ef[i] = ef[i] - dec[i]                       what the payload carried leaves the buffer
//   outer_add:          acc[i] = acc[i] + dec[i]                     sum of the replicas' decoded payloads, rank order
//   outer_nesterov:     d = acc[i] / r;  mom = mu * mom + d;  s = sync - lr * (d + mu * mom);  sync = s;  params = s
// (PyTorch SGD, nesterov=True, dampening 0: buf = mu*buf + d; d += mu*buf; p -= lr*d; a zero buffer makes the first
// step's buf = d exactly, as torch's clone.) Every replica runs the same launches on the same bits: bitwise equal.

struct Params {
  n: u32,
  r: f32,
  lr: f32,
  mu: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sync_r: array<f32>;
@group(0) @binding(2) var<storage, read> params_r: array<f32>;
@group(0) @binding(3) var<storage, read_write> ef: array<f32>;

@group(0) @binding(1) var<storage, read> dec: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@group(0) @binding(1) var<storage, read> acc: array<f32>;
@group(0) @binding(2) var<storage, read_write> sync_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> mom: array<f32>;
@group(0) @binding(4) var<storage, read_write> params: array<f32>;

fn gid(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn outer_pseudo_grad(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = gid(wg, nwg, lid);
  if (i >= p.n) { return; }
  ef[i] = ef[i] + (sync_r[i] - params_r[i]);
}

@compute @workgroup_size(256)
fn outer_sub(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = gid(wg, nwg, lid);
  if (i >= p.n) { return; }
  dst[i] = dst[i] - dec[i];
}

@compute @workgroup_size(256)
fn outer_add(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = gid(wg, nwg, lid);
  if (i >= p.n) { return; }
  dst[i] = dst[i] + dec[i];
}

@compute @workgroup_size(256)
fn outer_nesterov(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = gid(wg, nwg, lid);
  if (i >= p.n) { return; }
  let d = acc[i] / p.r;
  let v = p.mu * mom[i] + d;
  mom[i] = v;
  let s = sync_w[i] - p.lr * (d + p.mu * v);
  sync_w[i] = s;
  params[i] = s;
}
