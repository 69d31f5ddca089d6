// Every matmul a stage launches, as data: each linear layer of the model contributes three (forward, the gradient of
// its input, the accumulated gradient of its weight). The launches in block.ts and lm-head.ts take their cases from
// the plan objects a Stage builds once, and the autotuner's shape list (Stage.matmulShapes) is those same objects
// flattened by planCases, so the list and the launches cannot disagree.
import { matmul, matmulShapeKey, type MatmulCase } from '../gpu/ops/matmul';
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import type { BlockParamKey } from './config';

/** The three matmuls of one linear layer. */
export interface LinearMatmuls {
  /** y (= or +=) x @ W (+ b) */
  forward: MatmulCase;
  /** dx = dy @ W^T */
  dInput: MatmulCase;
  /** dW += x^T @ dy (or its transpose for a weight stored [out, in]) */
  dWeight: MatmulCase;
}

/** A Conv1D linear over N rows: W stored [IN, OUT] with a bias; `residual` adds y into its destination. The weight
 *  gradient's launch also accumulates the bias gradient (the column sums of dy: biasGrad). */
function conv1d(N: number, IN: number, OUT: number, residual: boolean): LinearMatmuls {
  return {
    forward: { M: N, K: IN, N: OUT, bias: true, accumulate: residual },
    dInput: { M: N, K: OUT, N: IN, transB: true },
    dWeight: { M: IN, K: N, N: OUT, transA: true, accumulate: true, biasGrad: true },
  };
}

/** The tied lm_head over N rows: logits = x @ wte^T with wte stored [V, C], no bias. */
export function headMatmuls(d: { N: number; C: number; V: number }): LinearMatmuls {
  const { N, C, V } = d;
  return {
    forward: { M: N, K: C, N: V, transB: true },
    dInput: { M: N, K: V, N: C },
    dWeight: { M: V, K: N, N: C, transA: true, accumulate: true },
  };
}

/** A block's linears in launch order: qkv, the attention projection (into the residual), fc, the MLP projection
 *  (into the residual). */
export interface BlockMatmuls {
  qkv: LinearMatmuls;
  attproj: LinearMatmuls;
  fc: LinearMatmuls;
  fcproj: LinearMatmuls;
}

/** Each block linear's weight [IN, OUT] and bias [OUT] (LayerParams keys). */
export const BLOCK_LINEAR_PARAMS: Readonly<Record<keyof BlockMatmuls, { readonly w: BlockParamKey; readonly b: BlockParamKey }>> = {
  qkv: { w: 'qkvw', b: 'qkvb' },
  attproj: { w: 'attprojw', b: 'attprojb' },
  fc: { w: 'fcw', b: 'fcb' },
  fcproj: { w: 'fcprojw', b: 'fcprojb' },
};

/** The matmuls of every block of a stage with N = B*T rows and n_embd C. */
export function blockMatmuls(d: { N: number; C: number }): BlockMatmuls {
  const { N, C } = d;
  return { qkv: conv1d(N, C, 3 * C, false), attproj: conv1d(N, C, C, true), fc: conv1d(N, C, 4 * C, false), fcproj: conv1d(N, 4 * C, C, true) };
}

/** The bottleneck's linears over N rows (src/model/bottleneck.ts): down [C -> k] and up [k -> C], Conv1D with bias. */
export interface BottleneckMatmuls {
  down: LinearMatmuls;
  up: LinearMatmuls;
}

export function bottleneckMatmuls(d: { N: number; C: number; k: number }): BottleneckMatmuls {
  const { N, C, k } = d;
  return { down: conv1d(N, C, k, false), up: conv1d(N, k, C, false) };
}

/**
 * Every case a stage launches (the autotuner's list), per linear: forward, dInput, dWeight; the head's, then the
 * bottleneck projections a stage has (`extra`), last.
 */
export function planCases(block: BlockMatmuls, head: LinearMatmuls | null, extra: readonly LinearMatmuls[] = []): MatmulCase[] {
  const linears = [block.qkv, block.attproj, block.fc, block.fcproj, ...(head ? [head] : []), ...extra];
  return linears.flatMap((l) => [l.forward, l.dInput, l.dWeight]);
}

/** Launches case `c` of the plan on these tensors; a bias (biasGrad) tensor is given exactly when the case has one. */
export function launchMatmul(rt: Runtime, c: MatmulCase, t: { out: Tensor; a: Tensor; b: Tensor; bias?: Tensor; biasGrad?: Tensor }): void {
  if (Boolean(c.bias) !== (t.bias !== undefined)) {
    throw new Error(`matmul plan: case ${matmulShapeKey(c)} ${c.bias ? 'needs a bias tensor' : 'takes no bias tensor'}`);
  }
  if (Boolean(c.biasGrad) !== (t.biasGrad !== undefined)) {
    throw new Error(`matmul plan: case ${matmulShapeKey(c)} ${c.biasGrad ? 'needs a biasGrad tensor' : 'takes no biasGrad tensor'}`);
  }
  matmul(rt, { M: c.M, N: c.N, K: c.K, transA: c.transA, transB: c.transB, accumulate: c.accumulate, ...t });
}
