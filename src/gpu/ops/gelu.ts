// GELU (tanh approximation), forward and backward. Shapes: any, elementwise over n.
// n % 4 == 0 takes the vec4 variant (one vec4 per thread); otherwise scalar. The variant depends only on n.
import code from '../../../shaders/gelu.wgsl?raw';
import { kernelVariants, packParams } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';
import { widthDefines, type Width } from '../wgsl';

const variants = (entry: string) =>
  kernelVariants<Width>({ name: (w) => `${entry}${w === 4 ? '4' : ''}`, source: code, entry, defines: widthDefines });
const fwd = variants('gelu_forward');
const bwd = variants('gelu_backward');

function width(n: number): Width {
  return n % 4 === 0 ? 4 : 1;
}

/** out = gelu(inp) over the first n elements. */
export function geluForward(rt: Runtime, out: Tensor, inp: Tensor, n = out.size): void {
  expectSize('gelu_forward', 'inp', inp, n);
  expectSize('gelu_forward', 'out', out, n);
  const w = width(n);
  const items = n / w;
  rt.launch(fwd(w), { inp, out }, rt.grid1d(items, 256), packParams([['u32', items]]));
}

/** dinp = dout * gelu'(inp) over the first n elements (OVERWRITE). */
export function geluBackward(rt: Runtime, dinp: Tensor, inp: Tensor, dout: Tensor, n = dinp.size): void {
  expectSize('gelu_backward', 'inp', inp, n);
  expectSize('gelu_backward', 'dout', dout, n);
  expectSize('gelu_backward', 'dinp', dinp, n);
  const w = width(n);
  const items = n / w;
  rt.launch(bwd(w), { binp: inp, dout, dinp }, rt.grid1d(items, 256), packParams([['u32', items]]));
}
