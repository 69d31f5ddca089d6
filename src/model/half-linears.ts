// The f16 mixed-precision path of a block's four linears (c_attn, attn c_proj, mlp c_fc, mlp c_proj), the Stage
// option `precision: 'f16'` (needs the device feature 'shader-f16'). Everything else of the model (embeddings,
// LayerNorms, attention, GELU, the head and loss, a bottleneck's projections) stays f32, and so do the master weights,
// the gradients and AdamW's state: f16 only ever holds matmul operands, cast from the f32 tensors right before use
// (src/gpu/ops/cast-f16.ts), and every matmul accumulates in f32 into f32 outputs (src/gpu/ops/matmul-f16.ts).
//
//   forward     y (= or +=) half(x) @ half(W) + half(b)
//   backward    dx  = 2^-k * (half(2^k dy) @ half(W)^T)
//               dW += 2^-k * (half(x)^T @ half(2^k dy))          db += sum of dy over rows: f32, unchanged
//
// Why the backward runs in f16 too, and why with a static scale 2^k on dy: dx and dW are two thirds of a linear's
// FLOPs, so an f16 forward alone would leave most of the gain on the table where f16 is fast. But the output
// gradients carry the loss's 1/tokens factor (Stage.backward's lossScale) and sink below f16's smallest normal
// 2^-14 ~ 6e-5, where a half keeps few bits or none. Measured on the reference config (4 layers, n_embd 128, 768
// tokens a step; scratch scripts, numbers in docs/model.md): after 100 steps 49-67% of the gradients at the block
// boundaries are f16 subnormals, and unscaled f16 gradients of the block linears are off from f32 by a relative L2
// error of 6.9e-4 at 2^10 tokens a step, 4.4e-3 at 2^13, 3.3e-2 at 2^16 and 0.38 at 2^19 (GPT-2's 0.5M-token
// batches), growing with the batch as the gradients shrink. Scaling dy by 2^k, the largest power of two <=
// 1/lossScale, brings it back to the size of a per-token gradient before the cast (max |dy| * 2^k was 0.17-1.8
// there, against f16's 65504), and alpha = 2^-k in the matmul undoes it; both are exact (powers of two), so the
// only rounding left is the operands' f16 rounding: the error stays at 4.6e-4 at every one of those batch sizes.
// Static, not dynamic: the scale follows from the batch size alone, with no overflow check and no skipped steps,
// and gradients 10^4 times the measured ones would still fit. x and W are not scaled: activations after a LayerNorm
// or GELU and GPT-2's 0.02-scale weights sit well inside f16's normal range.
//
// The f16 weight copies are per block (cast by each block forward, read again by its backward: the weights do not
// change between a forward and its backward); the operand scratch is one x and one dy buffer for the whole stage,
// sized for the widest operand (the MLP's [N, 4C]), recast for each launch (each cast is one elementwise pass).
import { f16Words } from '../gpu/f16';
import { castF16, MAX_CAST_SCALE_EXP } from '../gpu/ops/cast-f16';
import type { MatmulCase } from '../gpu/ops/matmul';
import { hasShaderF16, matmulF16 } from '../gpu/ops/matmul-f16';
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import { BLOCK_LINEAR_PARAMS, type BlockMatmuls, type LinearMatmuls } from './matmul-plan';
import type { LayerParams } from './param-handles';

/** The precision of a stage's block linears: 'f32' (the default) or 'f16' operands with f32 accumulation. */
export type Precision = 'f32' | 'f16';

export const PRECISIONS: readonly Precision[] = ['f32', 'f16'];

/** One of a block's four linears. */
export type BlockLinear = keyof BlockMatmuls;

/** A linear's weight and bias as packed f16. */
interface HalfWeight {
  w: Tensor;
  b: Tensor;
}

/** The exponent k of the static scale 2^k on dy before its f16 cast: the largest power of two <= 1/lossScale. */
export function gradScaleExp(lossScale: number): number {
  if (!(lossScale > 0) || !Number.isFinite(lossScale)) throw new Error(`f16 linears: loss scale ${lossScale} is not a positive number`);
  return Math.min(MAX_CAST_SCALE_EXP, Math.max(0, Math.floor(-Math.log2(lossScale))));
}

/** Throws, naming the missing feature, unless this device can run f16 kernels. */
export function requireShaderF16(rt: Runtime, who: string): void {
  if (hasShaderF16(rt)) return;
  const offered = rt.handle.adapter.features.has('shader-f16');
  throw new Error(
    `${who}: precision 'f16' needs the WebGPU feature 'shader-f16', which this device lacks (${
      offered
        ? 'the adapter offers it: request it with nodeRuntime({ f16: true }) / acquireDevice(gpu, { f16: true })'
        : `the adapter ${rt.handle.report.key} does not offer it`
    }); use precision 'f32'`,
  );
}

export class HalfLinears {
  /** Per block of the stage: its linears' f16 weights. */
  private readonly weights: Record<BlockLinear, HalfWeight>[];
  /** Packed f16 scratch for the input operand x and for the scaled output gradient dy, [N * 4C] halves each. */
  private readonly x: Tensor;
  private readonly dy: Tensor;

  constructor(
    private readonly rt: Runtime,
    mm: BlockMatmuls,
    blocks: number,
    prefix: string,
  ) {
    requireShaderF16(rt, 'stage');
    const halves = (n: number, label: string) => rt.tensor([f16Words(n)], label, 'u32');
    this.weights = Array.from({ length: blocks }, (_, j) => {
      const one = (k: BlockLinear): HalfWeight => {
        const { K: IN, N: OUT } = mm[k].forward;
        return { w: halves(IN * OUT, `${prefix}.h${j}.${k}.w16`), b: halves(OUT, `${prefix}.h${j}.${k}.b16`) };
      };
      return { qkv: one('qkv'), attproj: one('attproj'), fc: one('fc'), fcproj: one('fcproj') };
    });
    const widest = Math.max(...Object.values(mm).map((l: LinearMatmuls) => Math.max(l.forward.M * l.forward.K, l.forward.M * l.forward.N)));
    this.x = halves(widest, `${prefix}.x16`);
    this.dy = halves(widest, `${prefix}.dy16`);
  }

  /** Casts block j's weights and biases (the f32 masters) into its f16 copies: each block forward does this first. */
  castWeights(j: number, w: LayerParams): void {
    const hw = this.block(j);
    for (const k of Object.keys(BLOCK_LINEAR_PARAMS) as BlockLinear[]) {
      const p = BLOCK_LINEAR_PARAMS[k];
      castF16(this.rt, { out: hw[k].w, inp: w[p.w] }, { n: w[p.w].size });
      castF16(this.rt, { out: hw[k].b, inp: w[p.b] }, { n: w[p.b].size });
    }
  }

  /** out (= or += with the case) half(x) @ half(W) + half(b) for linear k of block j (after castWeights(j)). */
  forward(j: number, k: BlockLinear, c: MatmulCase, t: { out: Tensor; x: Tensor }): void {
    const hw = this.block(j)[k];
    castF16(this.rt, { out: this.x, inp: t.x }, { n: c.M * c.K });
    matmulF16(this.rt, {
      M: c.M,
      N: c.N,
      K: c.K,
      transA: c.transA,
      transB: c.transB,
      accumulate: c.accumulate,
      a: this.x,
      b: hw.w,
      bias: hw.b,
      out: t.out,
    });
  }

  /**
   * The input gradient dx (overwritten) and the weight gradient dw (accumulated) of linear k of block j from its
   * output gradient dy and the input x its forward read, with dy scaled by 2^scaleExp for the f16 cast.
   */
  backward(j: number, k: BlockLinear, l: LinearMatmuls, t: { dx: Tensor; dw: Tensor; x: Tensor; dy: Tensor }, scaleExp: number): void {
    const hw = this.block(j)[k];
    const rt = this.rt;
    const alpha = 2 ** -scaleExp;
    const di = l.dInput;
    const dwc = l.dWeight;
    castF16(rt, { out: this.dy, inp: t.dy }, { n: di.M * di.K, scaleExp });
    matmulF16(rt, {
      M: di.M,
      N: di.N,
      K: di.K,
      transA: di.transA,
      transB: di.transB,
      accumulate: di.accumulate,
      a: this.dy,
      b: hw.w,
      out: t.dx,
      alpha,
    });
    castF16(rt, { out: this.x, inp: t.x }, { n: dwc.M * dwc.K });
    matmulF16(rt, {
      M: dwc.M,
      N: dwc.N,
      K: dwc.K,
      transA: dwc.transA,
      transB: dwc.transB,
      accumulate: dwc.accumulate,
      a: this.x,
      b: this.dy,
      out: t.dw,
      alpha,
    });
  }

  private block(j: number): Record<BlockLinear, HalfWeight> {
    const w = this.weights[j];
    if (!w) throw new Error(`f16 linears: block ${j} out of range (0..${this.weights.length - 1})`);
    return w;
  }
}
