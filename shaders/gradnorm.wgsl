// Global gradient norm for clipping (PyTorch clip_grad_norm_ semantics, eps 1e-6). Grads are not modified.
// gradnorm_partials: grads [n] -> partials [P], P = ceil(n / 4096) (at least 1). Workgroup w (w = wg.y * num_wg.x
//   + wg.x) owns grads[w*4096 .. (w+1)*4096): thread t sums the squares of elements w*4096 + k*256 + t, k = 0..15,
//   serially, then a fixed tree over the 256 threads.
// gradnorm_finalize: partials [P] -> norm [1] = sqrt(sum), scale [1] = maxNorm > 0 ? min(1, maxNorm/(norm+1e-6)) : 1.
//   One workgroup: thread t sums partials[t], partials[t + 256], ... serially, then a fixed tree.
// Fixed order, depending only on n: no atomics.

struct Params {
  n: u32,        // partials: element count; finalize: partial count P
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const CHUNK: u32 = 4096u; // elements per workgroup in the first pass (16 per thread)

var<workgroup> sm: array<f32, 256>;

fn tree(t: u32) {
  // sm[0] = fixed-order sum of sm[0..256)
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (t < h) {
      sm[t] = sm[t] + sm[t + h];
    }
    workgroupBarrier();
  }
}

// ---- first level
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(256)
fn gradnorm_partials(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_id) lid: vec3u) {
  let w = wg.y * nwg.x + wg.x;
  let t = lid.x;
  let base = w * CHUNK;
  if (base >= max(p.n, 1u)) { return; } // uniform per workgroup; n = 0 still writes partials[0] = 0
  var s = 0.0;
  for (var k = 0u; k < CHUNK; k += 256u) {
    let i = base + k + t;
    if (i < p.n) {
      let g = grads[i];
      s += g * g;
    }
  }
  sm[t] = s;
  workgroupBarrier();
  tree(t);
  if (t == 0u) {
    partials[w] = sm[0];
  }
}

// ---- second level
@group(0) @binding(1) var<storage, read> partials_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;
@group(0) @binding(3) var<storage, read_write> scale: array<f32>;

@compute @workgroup_size(256)
fn gradnorm_finalize(@builtin(local_invocation_id) lid: vec3u) {
  let t = lid.x;
  var s = 0.0;
  for (var i = t; i < p.n; i += 256u) {
    s += partials_in[i];
  }
  sm[t] = s;
  workgroupBarrier();
  tree(t);
  if (t == 0u) {
    let nrm = sqrt(sm[0]);
    norm[0] = nrm;
    var c = 1.0;
    if (p.max_norm > 0.0) {
      c = min(1.0, p.max_norm / (nrm + 1e-6));
    }
    scale[0] = c;
  }
}
