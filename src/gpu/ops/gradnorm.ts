// Global gradient-norm clipping (PyTorch clip_grad_norm_ semantics, eps 1e-6): a two-level fixed-order sum of
// squares over one flat gradient buffer. Produces norm [1] and the clip factor scale [1]; AdamW multiplies the
// gradients by scale as it reads them, so grads are never rewritten. See shaders/gradnorm.wgsl.
import code from '../../../shaders/gradnorm.wgsl?raw';
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
  rt.launch(
    partialsKernel,
    { grads: a.grads, partials: a.partials },
    rt.grid1d(P, 1),
    packParams([
      ['u32', n],
      ['f32', maxNorm],
    ]),
  );
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
