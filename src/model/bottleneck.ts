// The learned bottleneck's two halves on the GPU (configuration in src/model/bottleneck-config.ts), typed like
// Embedding and LmHead: a stage that ends at a boundary ends with a BottleneckOut (down-projection [N, C] -> [N, k]),
// a stage that starts at one begins with a BottleneckIn (up-projection [N, k] -> [N, C]); a stage spanning a boundary
// (the single-peer model) runs both back to back. With passthrough the first k residual channels cross unprojected
// too (z += x[:, :k]; x'[:, :k] += z), added by the strided column add (src/gpu/ops/coladd.ts). The parts hold
// handles, not activations: the stage passes its own per-slot tensors in.
import { colAdd } from '../gpu/ops/coladd';
import { biasBackward } from '../gpu/ops/matmul';
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

/** The sending half: z = x @ Wd + bd (+ x[:, :k]). */
export class BottleneckOut {
  constructor(
    private readonly rt: Runtime,
    /** The boundary: after this many blocks. */
    readonly boundary: number,
    readonly weights: ParamsAndGrads<ProjectionParams>,
    /** The down-projection's matmuls (also listed by Stage.matmulShapes). */
    readonly mm: LinearMatmuls,
    readonly dims: BottleneckDims,
  ) {}

  /** z [N, k] from the residual stream x [N, C]. */
  forward(x: Tensor, z: Tensor): void {
    const { N, C, k, passthrough } = this.dims;
    const w = this.weights.params;
    launchMatmul(this.rt, this.mm.forward, { out: z, a: x, b: w.w, bias: w.b });
    if (passthrough) colAdd(this.rt, z, x, { rows: N, cols: k, dstStride: k, srcStride: C });
  }

  /** From dz [N, k]: accumulates dWd, dbd; OVERWRITES dx [N, C] with the gradient of x. */
  backward(x: Tensor, dz: Tensor, dx: Tensor): void {
    const { N, C, k, passthrough } = this.dims;
    const w = this.weights.params;
    const dw = this.weights.grads;
    launchMatmul(this.rt, this.mm.dWeight, { out: dw.w, a: x, b: dz });
    biasBackward(this.rt, dw.b, dz, N, k);
    launchMatmul(this.rt, this.mm.dInput, { out: dx, a: dz, b: w.w });
    if (passthrough) colAdd(this.rt, dx, dz, { rows: N, cols: k, dstStride: C, srcStride: k });
  }
}

/** The receiving half: x' = z @ Wu + bu (x'[:, :k] += z). */
export class BottleneckIn {
  constructor(
    private readonly rt: Runtime,
    readonly boundary: number,
    readonly weights: ParamsAndGrads<ProjectionParams>,
    /** The up-projection's matmuls (also listed by Stage.matmulShapes). */
    readonly mm: LinearMatmuls,
    readonly dims: BottleneckDims,
  ) {}

  /** x' [N, C] from the narrow z [N, k]. */
  forward(z: Tensor, x: Tensor): void {
    const { N, C, k, passthrough } = this.dims;
    const w = this.weights.params;
    launchMatmul(this.rt, this.mm.forward, { out: x, a: z, b: w.w, bias: w.b });
    if (passthrough) colAdd(this.rt, x, z, { rows: N, cols: k, dstStride: C, srcStride: k });
  }

  /** From dx' [N, C]: accumulates dWu, dbu; OVERWRITES dz [N, k] with the gradient of z. */
  backward(z: Tensor, dx: Tensor, dz: Tensor): void {
    const { N, C, k, passthrough } = this.dims;
    const w = this.weights.params;
    const dw = this.weights.grads;
    launchMatmul(this.rt, this.mm.dWeight, { out: dw.w, a: z, b: dx });
    biasBackward(this.rt, dw.b, dx, N, C);
    launchMatmul(this.rt, this.mm.dInput, { out: dz, a: dx, b: w.w });
    if (passthrough) colAdd(this.rt, dz, dx, { rows: N, cols: k, dstStride: k, srcStride: C });
  }
}
