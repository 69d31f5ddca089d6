// GELU (tanh approximation), forward and backward. Shapes: any, elementwise over n.
// n % 4 == 0 takes the vec4 entry points (one vec4 per thread); otherwise scalar. The variant depends only on n.
import code from '../../../shaders/gelu.wgsl?raw';
import { defineKernel, packParams } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';

const fwd = defineKernel({ name: 'gelu_forward', code, entry: 'gelu_forward', bindings: ['uniform', 'read', 'rw'] });
const fwd4 = defineKernel({ name: 'gelu_forward4', code, entry: 'gelu_forward4', bindings: ['uniform', 'read', 'rw'] });
const bwd = defineKernel({ name: 'gelu_backward', code, entry: 'gelu_backward', bindings: ['uniform', 'read', 'read', 'rw'] });
const bwd4 = defineKernel({ name: 'gelu_backward4', code, entry: 'gelu_backward4', bindings: ['uniform', 'read', 'read', 'rw'] });

/** out = gelu(inp) over the first n elements. */
export function geluForward(rt: Runtime, out: Tensor, inp: Tensor, n = out.size): void {
  expectSize('gelu_forward', 'inp', inp, n);
  expectSize('gelu_forward', 'out', out, n);
  const items = n % 4 === 0 ? n / 4 : n;
  rt.launch(n % 4 === 0 ? fwd4 : fwd, [inp, out], rt.grid1d(items, 256), packParams([['u32', items]]));
}

/** dinp = dout * gelu'(inp) over the first n elements (OVERWRITE). */
export function geluBackward(rt: Runtime, dinp: Tensor, inp: Tensor, dout: Tensor, n = dinp.size): void {
  expectSize('gelu_backward', 'inp', inp, n);
  expectSize('gelu_backward', 'dout', dout, n);
  expectSize('gelu_backward', 'dinp', dinp, n);
  const items = n % 4 === 0 ? n / 4 : n;
  rt.launch(n % 4 === 0 ? bwd4 : bwd, [inp, dout, dinp], rt.grid1d(items, 256), packParams([['u32', items]]));
}
