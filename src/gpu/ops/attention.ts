// Causal multi-head self-attention (GPT-2), forward and backward. Shapes and passes in shaders/attention.wgsl.
// qkv [B,T,3C] (q | k | v), out [B,T,C], att/datt [B,NH,T,T], dout [B,T,C], dqkv [B,T,3C]; hs = C / NH.
// T % 4 == 0 and hs % 4 == 0 (the model configs) take the vec4 fast path; other shapes the generic entries, with
// vec4 loads along d when hs % 4 == 0 and a scalar variant of the same shader otherwise.
import code from '../../../shaders/attention.wgsl?raw';
import { defineKernel, packParams, type Kernel } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';

export interface AttentionDims {
  B: number;
  T: number;
  C: number;
  NH: number;
  /** Force the generic kernels even when T % 4 == 0 and hs % 4 == 0 (tests and benchmarks). */
  generic?: boolean;
}

type Entry =
  | 'attention_scores'
  | 'attention_softmax'
  | 'attention_softmax_backward'
  | 'attention_av'
  | 'attention_backward_dqkv'
  | 'attention_scores4'
  | 'attention_softmax4'
  | 'attention_softmax_backward4'
  | 'attention_av4'
  | 'attention_atv4';

const BINDINGS: Record<Entry, Kernel['bindings']> = {
  attention_scores: ['uniform', 'read', 'read', 'rw'],
  attention_softmax: ['uniform', 'rw'],
  attention_softmax_backward: ['uniform', 'read', 'rw'],
  attention_av: ['uniform', 'read', 'read', 'rw'],
  attention_backward_dqkv: ['uniform', 'read', 'read', 'read', 'read', 'rw'],
  attention_scores4: ['uniform', 'read', 'read', 'rw'],
  attention_softmax4: ['uniform', 'rw'],
  attention_softmax_backward4: ['uniform', 'read', 'rw'],
  attention_av4: ['uniform', 'read', 'read', 'rw'],
  attention_atv4: ['uniform', 'read', 'read', 'rw'],
};

const CONFIG_BLOCK = /\/\/ CONFIG-BEGIN[\s\S]*?\/\/ CONFIG-END/;
if (!CONFIG_BLOCK.test(code)) throw new Error('attention.wgsl: CONFIG-BEGIN/CONFIG-END block missing');
const scalarCode = code.replace(
  CONFIG_BLOCK,
  '// CONFIG-BEGIN (scalar variant)\nalias VT = f32;\nfn hsum(x: VT) -> f32 { return x; }\n// CONFIG-END',
);

/** Rows (t) per thread; must match `R` in the shader. */
const R = 4;
/** Lanes along s in attention_scores (rows) and attention_scores4 (4-column blocks). */
const WS = 32;
const WS4 = 16;
/** Threads per workgroup in attention_av4 / attention_atv4. */
const WG4 = 64;
/** Lanes along d (VT units) in attention_av / attention_backward_dqkv; more d go to grid z. */
const WD_MAX = 8;

const kernels = new Map<string, Kernel>();
function kernel(entry: Entry, vec4: boolean, constants: Record<string, number> = {}): Kernel {
  const key = `${entry}:${vec4 ? 'v4' : 's'}:${JSON.stringify(constants)}`;
  let k = kernels.get(key);
  if (!k) {
    const name = `${entry}${vec4 ? '' : '_scalar'}`;
    k = defineKernel({ name, code: vec4 ? code : scalarCode, entry, bindings: BINDINGS[entry], constants });
    kernels.set(key, k);
  }
  return k;
}

interface Plan {
  vec4: boolean;
  /** T % 4 == 0 and hs % 4 == 0: the *4 entries (vec4 along s and d). */
  fast: boolean;
  /** Head size, C and 3C in VT units. */
  hsv: number;
  cv: number;
  wd: number;
  rows: number;
  scale: number;
  /** (t-blocks, b*NH [, d-chunks]) */
  gridRows: [number, number];
  gridD: [number, number, number];
  /** Fast path: (ceil(T/4 * hsv / WG4), b*NH) for av4/atv4, (T/4, b*NH) for scores4. */
  grid4: [number, number];
  grid4s: [number, number];
}

function plan(op: string, d: AttentionDims): Plan {
  const { B, T, C, NH } = d;
  for (const [k, v] of Object.entries({ B, T, C, NH }) as [string, number][]) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: ${k} must be a positive integer, got ${v}`);
  }
  if (C % NH !== 0) throw new Error(`${op}: C ${C} is not divisible by NH ${NH}`);
  if (B * NH * T * T > 0xffffffff || B * T * 3 * C > 0xffffffff) throw new Error(`${op}: ${B}x${T}x${C} (NH ${NH}) overflows u32 indexing`);
  const hs = C / NH;
  const vec4 = hs % 4 === 0;
  const w = vec4 ? 4 : 1;
  const hsv = hs / w;
  const wd = WD_MAX; // fixed: one pipeline per variant (lavapipe compiles are slow); idle lanes return
  const tBlocks = Math.ceil(T / R);
  return {
    vec4,
    fast: vec4 && T % 4 === 0 && !d.generic,
    hsv,
    cv: C / w,
    wd,
    rows: B * NH * T,
    scale: 1 / Math.sqrt(hs),
    gridRows: [tBlocks, B * NH],
    gridD: [tBlocks, B * NH, Math.ceil(hsv / wd)],
    grid4: [Math.ceil(((T / 4) * hsv) / WG4), B * NH],
    grid4s: [T / 4, B * NH],
  };
}

/** Params struct of the shader: T, NH, hsv, aStride, aOff, bStride, bOff, scale, rows. */
function params(d: AttentionDims, pl: Plan, aStride: number, aOff: number, bStride: number, bOff: number, scale: number): ArrayBuffer {
  return packParams([
    ['u32', d.T],
    ['u32', d.NH],
    ['u32', pl.hsv],
    ['u32', aStride],
    ['u32', aOff],
    ['u32', bStride],
    ['u32', bOff],
    ['f32', scale],
    ['u32', pl.rows],
  ]);
}

/** out[B,T,C] = causal attention of qkv[B,T,3C]; saves att[B,NH,T,T] (softmax probabilities; entries s>t written as 0) for backward. */
export function attentionForward(rt: Runtime, a: { out: Tensor; att: Tensor; qkv: Tensor }, d: AttentionDims): void {
  const op = 'attention_forward';
  const pl = plan(op, d);
  const { B, T, C, NH } = d;
  expectSize(op, 'qkv', a.qkv, B * T * 3 * C);
  expectSize(op, 'out', a.out, B * T * C);
  expectSize(op, 'att', a.att, B * NH * T * T);
  const c3 = 3 * pl.cv;
  if (pl.fast) {
    rt.launch(kernel('attention_scores4', true, { WS: WS4 }), [a.qkv, a.qkv, a.att], pl.grid4s, params(d, pl, c3, 0, c3, pl.cv, pl.scale));
    rt.launch(kernel('attention_softmax4', true), [a.att], rt.grid1d(pl.rows, 64), params(d, pl, 0, 0, 0, 0, 1));
    rt.launch(kernel('attention_av4', true, { WG4 }), [a.att, a.qkv, a.out], pl.grid4, params(d, pl, c3, 2 * pl.cv, pl.cv, 0, 1));
    return;
  }
  // att <- q . k * scale (s <= t)
  rt.launch(kernel('attention_scores', pl.vec4, { WS }), [a.qkv, a.qkv, a.att], pl.gridRows, params(d, pl, c3, 0, c3, pl.cv, pl.scale));
  rt.launch(kernel('attention_softmax', pl.vec4), [a.att], rt.grid1d(pl.rows, 64), params(d, pl, 0, 0, 0, 0, 1));
  // out <- att @ v
  rt.launch(kernel('attention_av', pl.vec4, { WD: pl.wd }), [a.att, a.qkv, a.out], pl.gridD, params(d, pl, c3, 2 * pl.cv, pl.cv, 0, 1));
}

/**
 * dqkv[B,T,3C] (OVERWRITTEN, every element including masked parts) from dout[B,T,C]; datt[B,NH,T,T] is scratch.
 * `att` must be attentionForward's output: its zeros above the diagonal are relied upon.
 */
export function attentionBackward(
  rt: Runtime,
  a: { dqkv: Tensor; datt: Tensor; dout: Tensor; qkv: Tensor; att: Tensor },
  d: AttentionDims,
): void {
  const op = 'attention_backward';
  const pl = plan(op, d);
  const { B, T, C, NH } = d;
  expectSize(op, 'qkv', a.qkv, B * T * 3 * C);
  expectSize(op, 'att', a.att, B * NH * T * T);
  expectSize(op, 'dout', a.dout, B * T * C);
  expectSize(op, 'datt', a.datt, B * NH * T * T);
  expectSize(op, 'dqkv', a.dqkv, B * T * 3 * C);
  const c3 = 3 * pl.cv;
  if (pl.fast) {
    const cv = pl.cv;
    rt.launch(kernel('attention_scores4', true, { WS: WS4 }), [a.dout, a.qkv, a.datt], pl.grid4s, params(d, pl, cv, 0, c3, 2 * cv, 1));
    rt.launch(kernel('attention_softmax_backward4', true), [a.att, a.datt], rt.grid1d(pl.rows, 64), params(d, pl, 0, 0, 0, 0, pl.scale));
    // dq = datt @ k, dk = datt^T @ q, dv = att^T @ dout
    rt.launch(kernel('attention_av4', true, { WG4 }), [a.datt, a.qkv, a.dqkv], pl.grid4, params(d, pl, c3, cv, c3, 0, 1));
    rt.launch(kernel('attention_atv4', true, { WG4 }), [a.datt, a.qkv, a.dqkv], pl.grid4, params(d, pl, c3, 0, c3, cv, 1));
    rt.launch(kernel('attention_atv4', true, { WG4 }), [a.att, a.dout, a.dqkv], pl.grid4, params(d, pl, cv, 0, c3, 2 * cv, 1));
    return;
  }
  // datt <- dout . v (s <= t)
  rt.launch(kernel('attention_scores', pl.vec4, { WS }), [a.dout, a.qkv, a.datt], pl.gridRows, params(d, pl, pl.cv, 0, c3, 2 * pl.cv, 1));
  // datt <- att * (datt - rowsum(att * datt)) * scale, zeros above the diagonal
  rt.launch(kernel('attention_softmax_backward', pl.vec4), [a.att, a.datt], rt.grid1d(pl.rows, 64), params(d, pl, 0, 0, 0, 0, pl.scale));
  // dq, dk, dv
  rt.launch(kernel('attention_backward_dqkv', pl.vec4, { WD: pl.wd }), [a.qkv, a.att, a.dout, a.datt, a.dqkv], pl.gridD, params(d, pl, c3, pl.cv, 0, 0, 1));
}
