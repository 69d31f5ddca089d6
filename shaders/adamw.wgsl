// AdamW (torch.optim.AdamW semantics: decoupled weight decay applied first, then the bias-corrected Adam step).
// params, grads, m, v: [n] (views into the flat parameter/gradient/moment buffers), grad_scale: [1] (gradNorm's clip
// factor). Elementwise, 256 threads, i = (wg.y * num_wg.x + wg.x) * 256 + lid.x so n > 16.7M folds into y.
//   g = grads[i] * grad_scale[0]
//   param *= decay                                  decay = 1 - lr * weight_decay
//   m = beta1 * m + one_minus_beta1 * g
//   v = beta2 * v + one_minus_beta2 * g * g
//   param -= step_size * m / (sqrt(v) / bc2_sqrt + eps)   step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t)
// The host computes decay, one_minus_beta*, step_size and bc2_sqrt in float64 (as PyTorch does in Python) and passes
// them rounded to f32.

struct Params {
  n: u32,
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  decay: f32,
  step_size: f32,
  bc2_sqrt: f32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read> grad_scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_id) lid: vec3u) {
  let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
  if (i >= p.n) { return; }
  let g = grads[i] * grad_scale[0];
  let mi = p.beta1 * m[i] + p.one_minus_beta1 * g;
  let vi = p.beta2 * v[i] + p.one_minus_beta2 * (g * g);
  m[i] = mi;
  v[i] = vi;
  let w = params[i] * p.decay;
  params[i] = w - p.step_size * (mi / (sqrt(vi) / p.bc2_sqrt + p.eps));
}
