// One GPT-2 transformer block on the GPU, forward and backward (llm.c naming):
//   ln1 = LN(x); qkv = ln1 @ Wattn + b; atty = attn(qkv); res2 = x + atty @ Wproj + b
//   ln2 = LN(res2); fch = ln2 @ Wfc + b; fchGelu = gelu(fch); out = res2 + fchGelu @ Wfcproj + b
// Backward walks it in reverse with one residual-gradient buffer `dres` that the LayerNorm backwards accumulate into.
// The four linears run the f32 matmul plan, or with `half` (the stage's precision 'f16') f16 operands
// (src/model/half-linears.ts); every other op is f32 either way.
import { attentionBackward, attentionForward } from '../gpu/ops/attention';
import { geluBackward, geluForward } from '../gpu/ops/gelu';
import { layernormBackward, layernormForward } from '../gpu/ops/layernorm';
import { biasBackward } from '../gpu/ops/matmul';
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import type { BlockLinear, HalfLinears } from './half-linears';
import { BLOCK_LINEAR_PARAMS, launchMatmul, type BlockMatmuls } from './matmul-plan';
import type { LayerParams, ParamsAndGrads } from './param-handles';

/** Block sizes: B sequences of T tokens, n_embd C, n_head NH. */
export interface BlockDims {
  B: number;
  T: number;
  C: number;
  NH: number;
}

/** What one block's forward keeps for its backward, per in-flight microbatch. */
export interface LayerActs {
  ln1: Tensor;
  ln1Mean: Tensor;
  ln1Rstd: Tensor;
  qkv: Tensor;
  atty: Tensor;
  att: Tensor;
  res2: Tensor;
  ln2: Tensor;
  ln2Mean: Tensor;
  ln2Rstd: Tensor;
  fch: Tensor;
  fchGelu: Tensor;
  out: Tensor;
}

/** Backward scratch shared by every block and slot of a stage. `dres` ends as the gradient of the block input. */
export interface BlockScratch {
  dres: Tensor;
  dC: Tensor;
  dqkv: Tensor;
  datt: Tensor;
  dfch: Tensor;
  dfchGelu: Tensor;
}

/** The shapes of one block's activations per microbatch (allocLayerActs; stage-memory.ts sizes them). */
export function layerActShapes(d: BlockDims): Record<keyof LayerActs, number[]> {
  const { B, T, C, NH } = d;
  const N = B * T;
  return {
    ln1: [N, C],
    ln1Mean: [N],
    ln1Rstd: [N],
    qkv: [N, 3 * C],
    atty: [N, C],
    att: [B, NH, T, T],
    res2: [N, C],
    ln2: [N, C],
    ln2Mean: [N],
    ln2Rstd: [N],
    fch: [N, 4 * C],
    fchGelu: [N, 4 * C],
    out: [N, C],
  };
}

/** The shapes of the backward scratch every block and slot of a stage shares. */
export function blockScratchShapes(d: BlockDims): Record<keyof BlockScratch, number[]> {
  const { B, T, C, NH } = d;
  const N = B * T;
  return { dres: [N, C], dC: [N, C], dqkv: [N, 3 * C], datt: [B, NH, T, T], dfch: [N, 4 * C], dfchGelu: [N, 4 * C] };
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function allocLayerActs(rt: Runtime, d: BlockDims, prefix: string): LayerActs {
  const shapes = layerActShapes(d);
  const t = (k: keyof LayerActs) => rt.tensor(shapes[k], `${prefix}.${snake(k)}`);
  return {
    ln1: t('ln1'),
    ln1Mean: t('ln1Mean'),
    ln1Rstd: t('ln1Rstd'),
    qkv: t('qkv'),
    atty: t('atty'),
    att: t('att'),
    res2: t('res2'),
    ln2: t('ln2'),
    ln2Mean: t('ln2Mean'),
    ln2Rstd: t('ln2Rstd'),
    fch: t('fch'),
    fchGelu: t('fchGelu'),
    out: t('out'),
  };
}

export function allocBlockScratch(rt: Runtime, d: BlockDims): BlockScratch {
  const shapes = blockScratchShapes(d);
  const t = (k: keyof BlockScratch) => rt.tensor(shapes[k], snake(k));
  return { dres: t('dres'), dC: t('dC'), dqkv: t('dqkv'), datt: t('datt'), dfch: t('dfch'), dfchGelu: t('dfchGelu') };
}

/** A block's linears in f16: the stage's HalfLinears, this block's index in it and (backward) the exponent of the
 *  static scale on the output gradients (gradScaleExp of the loss scale). */
export interface HalfBlock {
  lin: HalfLinears;
  j: number;
  gradScaleExp: number;
}

/** Forward of one block from input `x` into `a` (a.out is its output). */
export function blockForward(
  rt: Runtime,
  mm: BlockMatmuls,
  w: LayerParams,
  a: LayerActs,
  x: Tensor,
  d: BlockDims,
  half: HalfBlock | null = null,
): void {
  const { B, T, C, NH } = d;
  const N = B * T;
  // y (= or +=) x @ W + b of linear k.
  const linear = (k: BlockLinear, out: Tensor, inp: Tensor) => {
    if (half) half.lin.forward(half.j, k, mm[k].forward, { out, x: inp });
    else launchMatmul(rt, mm[k].forward, { out, a: inp, b: w[BLOCK_LINEAR_PARAMS[k].w], bias: w[BLOCK_LINEAR_PARAMS[k].b] });
  };
  half?.lin.castWeights(half.j, w);
  layernormForward(rt, { out: a.ln1, mean: a.ln1Mean, rstd: a.ln1Rstd, inp: x, weight: w.ln1w, bias: w.ln1b }, { N, C });
  linear('qkv', a.qkv, a.ln1);
  attentionForward(rt, { out: a.atty, att: a.att, qkv: a.qkv }, { B, T, C, NH });
  rt.copy(x, a.res2);
  linear('attproj', a.res2, a.atty);
  layernormForward(rt, { out: a.ln2, mean: a.ln2Mean, rstd: a.ln2Rstd, inp: a.res2, weight: w.ln2w, bias: w.ln2b }, { N, C });
  linear('fc', a.fch, a.ln2);
  geluForward(rt, a.fchGelu, a.fch);
  rt.copy(a.res2, a.out);
  linear('fcproj', a.out, a.fchGelu);
}

/**
 * Backward of one block whose forward read `x`: takes the gradient of its output in `s.dres`, accumulates the
 * parameter gradients into `p.grads` and leaves the gradient of `x` in `s.dres`.
 */
export function blockBackward(
  rt: Runtime,
  mm: BlockMatmuls,
  p: ParamsAndGrads<LayerParams>,
  a: LayerActs,
  x: Tensor,
  s: BlockScratch,
  d: BlockDims,
  half: HalfBlock | null = null,
): void {
  const { B, T, C, NH } = d;
  const N = B * T;
  const w = p.params;
  const dw = p.grads;
  const { dres, dC } = s;
  // dx = dy @ W^T, then dW += x^T @ dy and db += column sums of dy (the f32 launch does both), of linear k whose
  // forward read x.
  const linear = (k: BlockLinear, dx: Tensor, x: Tensor, dy: Tensor) => {
    const { w: wk, b: bk } = BLOCK_LINEAR_PARAMS[k];
    if (half) {
      half.lin.backward(half.j, k, mm[k], { dx, dw: dw[wk], x, dy }, half.gradScaleExp);
      biasBackward(rt, dw[bk], dy, N, mm[k].dWeight.N);
      return;
    }
    launchMatmul(rt, mm[k].dInput, { out: dx, a: dy, b: w[wk] });
    launchMatmul(rt, mm[k].dWeight, { out: dw[wk], a: x, b: dy, biasGrad: dw[bk] });
  };
  // MLP
  linear('fcproj', s.dfchGelu, a.fchGelu, dres);
  geluBackward(rt, s.dfch, a.fch, s.dfchGelu);
  linear('fc', dC, a.ln2, s.dfch);
  layernormBackward(
    rt,
    { dinp: dres, dweight: dw.ln2w, dbias: dw.ln2b, dout: dC, inp: a.res2, weight: w.ln2w, mean: a.ln2Mean, rstd: a.ln2Rstd },
    { N, C },
  );
  // attention
  linear('attproj', dC, a.atty, dres);
  attentionBackward(rt, { dqkv: s.dqkv, datt: s.datt, dout: dC, qkv: a.qkv, att: a.att }, { B, T, C, NH });
  linear('qkv', dC, a.ln1, s.dqkv);
  layernormBackward(
    rt,
    { dinp: dres, dweight: dw.ln1w, dbias: dw.ln1b, dout: dC, inp: x, weight: w.ln1w, mean: a.ln1Mean, rstd: a.ln1Rstd },
    { N, C },
  );
}
