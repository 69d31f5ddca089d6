// The learned bottleneck's two halves on the GPU (configuration in src/model/bottleneck-config.ts), typed like
// Embedding and LmHead: a stage that ends at a boundary ends with a BottleneckOut (down-projection [N, C] -> [N, k]),
// a stage that starts at one begins with a BottleneckIn (up-projection [N, k] -> [N, C]); a stage spanning a boundary
// (the single-peer model) runs both back to back. With passthrough the first k residual channels cross unprojected
// too (z += x[:, :k]; x'[:, :k] += z), added by the strided column add (src/gpu/ops/coladd.ts). The parts hold
// handles, not activations: the stage passes its own per-slot tensors in.
import { colAdd } from '../gpu/ops/coladd';
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import { launchMatmul, type LinearMatmuls } from './matmul-plan';
import type { ParamsAndGrads, ProjectionParams } from './param-handles';

/** Rows N = B*T, model width C, bottleneck width k, and whether the first k channels pass through. */
export interface BottleneckDims {
  N: number;
  C: number;
  k: number;
  passthrough: boolean;
}

/**
 * One half: out = inp @ W + b over N rows, inW -> outW channels, and with passthrough the first `through` channels of
 * inp added to those of out. The down-projection is C -> k, the up-projection k -> C: the same op, mirrored.
 */
export class BottleneckProjection {
  private readonly through: number;

  constructor(
    private readonly rt: Runtime,
    /** The boundary: after this many blocks. */
    readonly boundary: number,
    readonly weights: ParamsAndGrads<ProjectionParams>,
    /** The projection's matmuls (also listed by Stage.matmulShapes). */
    readonly mm: LinearMatmuls,
    private readonly N: number,
    readonly inW: number,
    readonly outW: number,
    passthrough: boolean,
  ) {
    this.through = passthrough ? Math.min(inW, outW) : 0;
  }

  /** out [N, outW] from inp [N, inW]. */
  forward(inp: Tensor, out: Tensor): void {
    const w = this.weights.params;
    launchMatmul(this.rt, this.mm.forward, { out, a: inp, b: w.w, bias: w.b });
    if (this.through) colAdd(this.rt, out, inp, { rows: this.N, cols: this.through, dstStride: this.outW, srcStride: this.inW });
  }

  /** From dout [N, outW]: accumulates dW, db; OVERWRITES dinp [N, inW] with the gradient of inp. */
  backward(inp: Tensor, dout: Tensor, dinp: Tensor): void {
    const w = this.weights.params;
    const dw = this.weights.grads;
    launchMatmul(this.rt, this.mm.dWeight, { out: dw.w, a: inp, b: dout, biasGrad: dw.b });
    launchMatmul(this.rt, this.mm.dInput, { out: dinp, a: dout, b: w.w });
    if (this.through) colAdd(this.rt, dinp, dout, { rows: this.N, cols: this.through, dstStride: this.inW, srcStride: this.outW });
  }
}

/** The sending half: z = x @ Wd + bd (+ x[:, :k]), [N, C] -> [N, k]. */
export type BottleneckOut = BottleneckProjection;
/** The receiving half: x' = z @ Wu + bu (x'[:, :k] += z), [N, k] -> [N, C]. */
export type BottleneckIn = BottleneckProjection;

export function downProjection(
  rt: Runtime,
  boundary: number,
  w: ParamsAndGrads<ProjectionParams>,
  mm: LinearMatmuls,
  d: BottleneckDims,
): BottleneckOut {
  return new BottleneckProjection(rt, boundary, w, mm, d.N, d.C, d.k, d.passthrough);
}

export function upProjection(rt: Runtime, boundary: number, w: ParamsAndGrads<ProjectionParams>, mm: LinearMatmuls, d: BottleneckDims): BottleneckIn {
  return new BottleneckProjection(rt, boundary, w, mm, d.N, d.k, d.C, d.passthrough);
}
