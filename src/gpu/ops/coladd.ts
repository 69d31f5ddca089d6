// Strided column add (shaders/coladd.wgsl): dst[r, c] += src[r, c] over the first `cols` columns of `rows` rows of
// two row-major matrices of different widths. The bottleneck's passthrough adds the first k residual channels
// into the narrow tensor and back.
import code from '../../../shaders/coladd.wgsl?raw';
import { packParams, singleKernel } from '../kernel';
import type { Runtime } from '../runtime';
import type { Tensor } from '../tensor';

const kernel = singleKernel('coladd', code, 'coladd');

export interface ColAddDims {
  rows: number;
  cols: number;
  /** Row widths (elements) of dst and src; each >= cols. */
  dstStride: number;
  srcStride: number;
}

/** dst[r * dstStride + c] += src[r * srcStride + c] for r < rows, c < cols (ACCUMULATE). */
export function colAdd(rt: Runtime, dst: Tensor, src: Tensor, d: ColAddDims): void {
  const { rows, cols, dstStride, srcStride } = d;
  for (const [k, v] of Object.entries(d)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`coladd: ${k} must be a positive integer, got ${v}`);
  }
  if (cols > dstStride || cols > srcStride) throw new Error(`coladd: ${cols} columns do not fit rows of ${dstStride} (dst) / ${srcStride} (src)`);
  if (dst.size < rows * dstStride)
    throw new Error(`coladd: dst ${dst.label} has ${dst.size} elements, ${rows} rows of ${dstStride} need ${rows * dstStride}`);
  if (src.size < rows * srcStride)
    throw new Error(`coladd: src ${src.label} has ${src.size} elements, ${rows} rows of ${srcStride} need ${rows * srcStride}`);
  rt.launch(
    kernel,
    { src, dst },
    rt.grid1d(rows * cols, 256),
    packParams([
      ['u32', rows],
      ['u32', cols],
      ['u32', dstStride],
      ['u32', srcStride],
    ]),
  );
}
