// LayerNorm over the last dim (eps 1e-5, biased variance: PyTorch LayerNorm), forward and backward.
// Shapes: inp/out/dout/dinp [N, C]; weight/bias/dweight/dbias [C]; mean/rstd [N].
// Rows run one thread per row (registers only). Column sums for dweight/dbias are two fixed-order passes through a
// scratch buffer (row chunks of LN_ROWS_PER_CHUNK, then chunks in order): no atomics, bitwise deterministic.
// C % 4 == 0 takes the vec4 variant of each kernel (the variant depends only on C).
import code from '../../../shaders/layernorm.wgsl?raw';
import { kernelVariants, packParams } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';
import { widthDefines, type Width } from '../wgsl';

export const LN_EPS = 1e-5;
/** Rows per partial-sum chunk in the dweight/dbias reduction (fixed: results depend only on shapes). */
export const LN_ROWS_PER_CHUNK = 32;

const variants = (entry: string) =>
  kernelVariants<Width>({ name: (w) => `${entry}${w === 4 ? '4' : ''}`, source: code, entry, defines: widthDefines });
const fwd = variants('layernorm_forward');
const bwdDinp = variants('layernorm_backward_dinp');
const dwPartial = variants('layernorm_dw_partial');
const dwFinal = variants('layernorm_dw_final');

function checkDims(op: string, d: { N: number; C: number }): void {
  for (const [name, v] of Object.entries(d)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: ${name} = ${v} must be a positive integer`);
  }
}

function chunks(N: number): number {
  return Math.ceil(N / LN_ROWS_PER_CHUNK);
}

/** Elements of scratch layernormBackward needs for this shape (f32). */
export function layernormScratchSize(d: { N: number; C: number }): number {
  return 2 * d.C * chunks(d.N);
}

function params(N: number, C: number, part = 0): { w: Width; Cw: number; buf: ArrayBuffer } {
  const w: Width = C % 4 === 0 ? 4 : 1;
  const Cw = C / w;
  const buf = packParams([
    ['u32', N],
    ['u32', Cw],
    ['f32', C],
    ['f32', LN_EPS],
    ['u32', LN_ROWS_PER_CHUNK],
    ['u32', chunks(N)],
    ['u32', part],
  ]);
  return { w, Cw, buf };
}

/** out[N,C] = (inp - mean)*rstd*weight + bias; writes mean[N], rstd[N] for backward. */
export function layernormForward(
  rt: Runtime,
  a: { out: Tensor; mean: Tensor; rstd: Tensor; inp: Tensor; weight: Tensor; bias: Tensor },
  d: { N: number; C: number },
): void {
  const op = 'layernorm_forward';
  const { N, C } = d;
  checkDims(op, d);
  expectSize(op, 'inp', a.inp, N * C);
  expectSize(op, 'out', a.out, N * C);
  expectSize(op, 'weight', a.weight, C);
  expectSize(op, 'bias', a.bias, C);
  expectSize(op, 'mean', a.mean, N);
  expectSize(op, 'rstd', a.rstd, N);
  const { w, buf } = params(N, C);
  rt.launch(fwd(w), { inp: a.inp, weight: a.weight, bias: a.bias, out: a.out, mean: a.mean, rstd: a.rstd }, rt.grid1d(N, 64), buf);
}

/** Elements of the smallest per-runtime scratch (src/model/stage-memory.ts counts it). */
export const LAYERNORM_MIN_SCRATCH = 4096;

// Scratch used when the caller passes none: one per runtime, grown on demand (allocated once, not per call).
const sharedScratch = new WeakMap<Runtime, Tensor>();
function defaultScratch(rt: Runtime, n: number): Tensor {
  let t = sharedScratch.get(rt);
  if (!t || t.size < n) {
    if (t) rt.release(t);
    t = rt.tensor([Math.max(n, LAYERNORM_MIN_SCRATCH)], 'layernorm scratch');
    sharedScratch.set(rt, t);
  }
  return t;
}

/**
 * dinp[N,C] += (ACCUMULATES: it is the residual stream's gradient), dweight[C] += , dbias[C] += .
 * Deterministic fixed-order column sums over N via `scratch` (layernormScratchSize(d) elements; when omitted, a
 * scratch buffer cached per runtime is used).
 */
export function layernormBackward(
  rt: Runtime,
  a: { dinp: Tensor; dweight: Tensor; dbias: Tensor; dout: Tensor; inp: Tensor; weight: Tensor; mean: Tensor; rstd: Tensor; scratch?: Tensor },
  d: { N: number; C: number },
): void {
  const op = 'layernorm_backward';
  const { N, C } = d;
  checkDims(op, d);
  expectSize(op, 'dout', a.dout, N * C);
  expectSize(op, 'inp', a.inp, N * C);
  expectSize(op, 'dinp', a.dinp, N * C);
  expectSize(op, 'weight', a.weight, C);
  expectSize(op, 'dweight', a.dweight, C);
  expectSize(op, 'dbias', a.dbias, C);
  expectSize(op, 'mean', a.mean, N);
  expectSize(op, 'rstd', a.rstd, N);
  const need = layernormScratchSize(d);
  if (a.scratch) expectSize(op, 'scratch', a.scratch, need);
  const scratch = a.scratch ?? defaultScratch(rt, need);
  const { w, Cw, buf } = params(N, C);
  const saved = { dout: a.dout, binp: a.inp, bmean: a.mean, brstd: a.rstd };
  rt.launch(bwdDinp(w), { ...saved, bweight: a.weight, dinp: a.dinp }, rt.grid1d(N, 64), buf);
  rt.launch(dwPartial(w), { ...saved, scratch }, rt.grid1d(chunks(N) * Cw, 64), buf);
  // dweight and dbias in separate dispatches: as views of one gradient buffer they must not be bound rw together.
  rt.launch(dwFinal(w), { fscratch: scratch, dparam: a.dweight }, rt.grid1d(Cw, 64), buf);
  rt.launch(dwFinal(w), { fscratch: scratch, dparam: a.dbias }, rt.grid1d(Cw, 64), params(N, C, 1).buf);
}
