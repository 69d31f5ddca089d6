// Residual add (forward) and gradient accumulation (its backward). Shapes: any, elementwise over n.
import code from '../../../shaders/residual.wgsl?raw';
import { defineKernel, packParams } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';

const forwardKernel = defineKernel({ name: 'residual_forward', code, entry: 'residual_forward', bindings: ['uniform', 'read', 'read', 'rw'] });
const accumulateKernel = defineKernel({ name: 'accumulate', code, entry: 'accumulate', bindings: ['uniform', 'read', 'rw'] });

/** out = a + b over the first n elements. */
export function residualForward(rt: Runtime, out: Tensor, a: Tensor, b: Tensor, n = out.size): void {
  for (const [w, t] of [['a', a], ['b', b], ['out', out]] as const) expectSize('residual_forward', w, t, n);
  rt.launch(forwardKernel, [a, b, out], rt.grid1d(n, 256), packParams([['u32', n]]));
}

/** dst += src over the first n elements (gradient accumulation). */
export function accumulate(rt: Runtime, dst: Tensor, src: Tensor, n = dst.size): void {
  expectSize('accumulate', 'src', src, n);
  expectSize('accumulate', 'dst', dst, n);
  rt.launch(accumulateKernel, [src, dst], rt.grid1d(n, 256), packParams([['u32', n]]));
}
