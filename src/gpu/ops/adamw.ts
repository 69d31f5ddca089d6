// AdamW (torch.optim.AdamW semantics): decoupled weight decay (param *= 1 - lr*wd) first, then the bias-corrected
// Adam step, with the gradient multiplied by gradNorm's clip factor as it is read. Launched once per decay group
// over views into the flat params/grads/m/v buffers. See shaders/adamw.wgsl.
import code from '../../../shaders/adamw.wgsl?raw';
import { bindingRanges } from '../chunks';
import { packParams, singleKernel } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor, expectNoAliasing } from '../tensor';

const kernel = singleKernel('adamw', code, 'adamw');

export interface AdamWHyper {
  n: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count (PyTorch's state['step'] after its increment). */
  step: number;
}

/** The f32 uniforms the kernel receives, computed in float64 like PyTorch's Python-side scalars. Exported for tests. */
export function adamwScalars(d: AdamWHyper): {
  decay: number;
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  stepSize: number;
  bc2Sqrt: number;
} {
  const bc1 = 1 - Math.pow(d.beta1, d.step);
  const bc2 = 1 - Math.pow(d.beta2, d.step);
  return {
    decay: 1 - d.lr * d.weightDecay,
    oneMinusBeta1: 1 - d.beta1,
    oneMinusBeta2: 1 - d.beta2,
    stepSize: d.lr / bc1,
    bc2Sqrt: Math.sqrt(bc2),
  };
}

/**
 * For i < n: g = grads[i] * gradScale[0]; param *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
 * param -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)   (torch.optim.AdamW, non-amsgrad, maximize=False).
 * Mathematically mhat/(sqrt(vhat)+eps) with mhat = m/(1-b1^t), vhat = v/(1-b2^t); PyTorch's evaluation order is kept.
 * params, m, v are updated in place; step t >= 1.
 */
export function adamwUpdate(rt: Runtime, a: { params: Tensor; grads: Tensor; m: Tensor; v: Tensor; gradScale: Tensor }, d: AdamWHyper): void {
  const op = 'adamw';
  const { n, lr, beta1, beta2, eps, weightDecay, step } = d;
  if (!Number.isInteger(n) || n < 0) throw new Error(`${op}: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(step) || step < 1) throw new Error(`${op}: step must be an integer >= 1, got ${step}`);
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`${op}: lr must be finite and >= 0, got ${lr}`);
  if (!(beta1 >= 0 && beta1 < 1)) throw new Error(`${op}: beta1 must be in [0, 1), got ${beta1}`);
  if (!(beta2 >= 0 && beta2 < 1)) throw new Error(`${op}: beta2 must be in [0, 1), got ${beta2}`);
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`${op}: eps must be finite and >= 0, got ${eps}`);
  if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) throw new Error(`${op}: weightDecay must be finite and >= 0, got ${weightDecay}`);
  for (const [w, t] of [
    ['params', a.params],
    ['grads', a.grads],
    ['m', a.m],
    ['v', a.v],
  ] as const)
    expectSize(op, w, t, n);
  expectSize(op, 'gradScale', a.gradScale, 1);
  expectNoAliasing(
    op,
    [
      ['grads', a.grads],
      ['gradScale', a.gradScale],
    ],
    [
      ['params', a.params],
      ['m', a.m],
      ['v', a.v],
    ],
  );
  const s = adamwScalars(d);
  // Elementwise: a store over one binding is updated in views (src/gpu/chunks.ts), the same values either way.
  for (const r of bindingRanges(rt, n)) {
    const v = (t: Tensor) => (r.count === n ? t : rt.view(t, r.start, [r.count], `${t.label}[${r.start}..]`));
    launchRange(rt, { params: v(a.params), grads: v(a.grads), m: v(a.m), v: v(a.v), gradScale: a.gradScale }, r.count, d, s);
  }
}

function launchRange(
  rt: Runtime,
  a: { params: Tensor; grads: Tensor; m: Tensor; v: Tensor; gradScale: Tensor },
  n: number,
  d: AdamWHyper,
  s: ReturnType<typeof adamwScalars>,
): void {
  const { beta1, beta2, eps } = d;
  rt.launch(
    kernel,
    { grads: a.grads, grad_scale: a.gradScale, params: a.params, m: a.m, v: a.v },
    rt.grid1d(n, 256),
    packParams([
      ['u32', n],
      ['f32', beta1],
      ['f32', beta2],
      ['f32', s.oneMinusBeta1],
      ['f32', s.oneMinusBeta2],
      ['f32', s.decay],
      ['f32', s.stepSize],
      ['f32', s.bc2Sqrt],
      ['f32', eps],
    ]),
  );
}
