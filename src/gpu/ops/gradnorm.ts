// Global gradient-norm clipping (PyTorch clip_grad_norm_ semantics, eps 1e-6): a two-level fixed-order sum of
// squares over one flat gradient buffer. Produces norm [1] and the clip factor scale [1]; AdamW multiplies the
// gradients by scale as it reads them, so grads are never rewritten. See shaders/gradnorm.wgsl.
import code from '../../../shaders/gradnorm.wgsl?raw';
import { bindingRanges } from '../chunks';
import { packParams, singleKernel } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor, expectNoAliasing } from '../tensor';

/** Elements reduced by one first-level workgroup (must match CHUNK in the shader). */
const CHUNK = 4096;

const partialsKernel = singleKernel('gradnorm_partials', code, 'gradnorm_partials');
const finalizeKernel = singleKernel('gradnorm_finalize', code, 'gradnorm_finalize');

/** Number of f32 elements the `partials` scratch tensor must hold for n gradient elements. */
export function gradNormScratchSize(n: number): number {
  return Math.max(1, Math.ceil(n / CHUNK));
}

/**
 * Over the first n elements of grads: norm[0] = sqrt(sum g^2) (fixed-order two-level reduction through
 * `partials`, no atomics) and scale[0] = maxNorm > 0 ? min(1, maxNorm / (norm + 1e-6)) : 1. Grads are NOT
 * modified. `partials` holds at least gradNormScratchSize(n) elements; norm and scale at least one each.
 */
export function gradNorm(rt: Runtime, a: { norm: Tensor; scale: Tensor; grads: Tensor; partials: Tensor }, d: { n: number; maxNorm: number }): void {
  const op = 'gradnorm';
  const { n, maxNorm } = d;
  if (!Number.isInteger(n) || n < 0) throw new Error(`${op}: n must be a non-negative integer, got ${n}`);
  if (!Number.isFinite(maxNorm) || maxNorm < 0) throw new Error(`${op}: maxNorm must be finite and >= 0, got ${maxNorm}`);
  const P = gradNormScratchSize(n);
  expectSize(op, 'grads', a.grads, n);
  expectSize(op, 'partials', a.partials, P);
  expectSize(op, 'norm', a.norm, 1);
  expectSize(op, 'scale', a.scale, 1);
  expectNoAliasing(op, [['grads', a.grads]], [['partials', a.partials]]);
  expectNoAliasing(
    op,
    [['partials', a.partials]],
    [
      ['norm', a.norm],
      ['scale', a.scale],
    ],
  );
  // A gradient buffer over one binding is reduced in views of whole CHUNKs whose partials start at a bindable offset
  // (src/gpu/chunks.ts): every partial is the same block's sum either way, so the norm is bitwise the same.
  for (const r of bindingRanges(rt, n, CHUNK * rt.viewAlignment)) {
    const whole = r.count === n;
    const grads = whole ? a.grads : rt.view(a.grads, r.start, [r.count], `${a.grads.label}[${r.start}..]`);
    const parts = whole
      ? a.partials
      : rt.view(a.partials, r.start / CHUNK, [gradNormScratchSize(r.count)], `${a.partials.label}[${r.start / CHUNK}..]`);
    rt.launch(
      partialsKernel,
      { grads, partials: parts },
      rt.grid1d(gradNormScratchSize(r.count), 1),
      packParams([
        ['u32', r.count],
        ['f32', maxNorm],
      ]),
    );
  }
  rt.launch(
    finalizeKernel,
    { partials_in: a.partials, norm: a.norm, scale: a.scale },
    [1],
    packParams([
      ['u32', P],
      ['f32', maxNorm],
    ]),
  );
}
