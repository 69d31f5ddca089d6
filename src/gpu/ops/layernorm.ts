// LayerNorm over the last dim (eps 1e-5, biased variance: PyTorch LayerNorm), forward and backward.
// Shapes: inp/out/dout/dinp [N, C]; weight/bias/dweight/dbias [C]; mean/rstd [N].
// Rows run one thread per row (registers only). Column sums for dweight/dbias are two fixed-order passes through a
// scratch buffer (row chunks of LN_ROWS_PER_CHUNK, then chunks in order): no atomics, bitwise deterministic.
// C % 4 == 0 takes the vec4 entry points (the variant depends only on C).
import code from '../../../shaders/layernorm.wgsl?raw';
import { defineKernel, packParams } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';

export const LN_EPS = 1e-5;
/** Rows per partial-sum chunk in the dweight/dbias reduction (fixed: results depend only on shapes). */
export const LN_ROWS_PER_CHUNK = 32;

const k = (entry: string, bindings: ('read' | 'rw')[]) => defineKernel({ name: entry, code, entry, bindings: ['uniform', ...bindings] });
const fwd = k('layernorm_forward', ['read', 'read', 'read', 'rw', 'rw', 'rw']);
const fwd4 = k('layernorm_forward4', ['read', 'read', 'read', 'rw', 'rw', 'rw']);
const bwdDinp = k('layernorm_backward_dinp', ['read', 'read', 'read', 'read', 'read', 'rw']);
const bwdDinp4 = k('layernorm_backward_dinp4', ['read', 'read', 'read', 'read', 'read', 'rw']);
const dwPartial = k('layernorm_dw_partial', ['read', 'read', 'rw', 'read', 'read']);
const dwPartial4 = k('layernorm_dw_partial4', ['read', 'read', 'rw', 'read', 'read']);
const dwFinal = k('layernorm_dw_final', ['read', 'rw']);
const dwFinal4 = k('layernorm_dw_final4', ['read', 'rw']);

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

function params(N: number, C: number, part = 0): { vec: boolean; Cw: number; buf: ArrayBuffer } {
  const vec = C % 4 === 0;
  const Cw = vec ? C / 4 : C;
  const buf = packParams([['u32', N], ['u32', Cw], ['f32', C], ['f32', LN_EPS], ['u32', LN_ROWS_PER_CHUNK], ['u32', chunks(N)], ['u32', part]]);
  return { vec, Cw, buf };
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
  const { vec, buf } = params(N, C);
  rt.launch(vec ? fwd4 : fwd, [a.inp, a.weight, a.bias, a.out, a.mean, a.rstd], rt.grid1d(N, 64), buf);
}

// Scratch used when the caller passes none: one per runtime, grown on demand (allocated once, not per call).
const sharedScratch = new WeakMap<Runtime, Tensor>();
function defaultScratch(rt: Runtime, n: number): Tensor {
  let t = sharedScratch.get(rt);
  if (!t || t.size < n) {
    if (t) rt.release(t);
    t = rt.tensor([Math.max(n, 4096)], 'layernorm scratch');
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
  const { vec, Cw, buf } = params(N, C);
  rt.launch(vec ? bwdDinp4 : bwdDinp, [a.dout, a.inp, a.weight, a.mean, a.rstd, a.dinp], rt.grid1d(N, 64), buf);
  rt.launch(vec ? dwPartial4 : dwPartial, [a.dout, a.inp, scratch, a.mean, a.rstd], rt.grid1d(chunks(N) * Cw, 64), buf);
  // dweight and dbias in separate dispatches: as views of one gradient buffer they must not be bound rw together.
  rt.launch(vec ? dwFinal4 : dwFinal, [scratch, a.dweight], rt.grid1d(Cw, 64), buf);
  rt.launch(vec ? dwFinal4 : dwFinal, [scratch, a.dbias], rt.grid1d(Cw, 64), params(N, C, 1).buf);
}
