// Causal multi-head self-attention (GPT-2), forward and backward. Shapes and passes in shaders/attention.wgsl.
// qkv [B,T,3C] (q | k | v), out [B,T,C], att/datt [B,NH,T,T], dout [B,T,C], dqkv [B,T,3C]; hs = C / NH.
// T % 4 == 0 and hs % 4 == 0 (the model configs) take the vec4 fast path; other shapes the generic entries, with
// vec4 loads along d when hs % 4 == 0 and their scalar variant (VEC4 off in the one template) otherwise.
import code from '../../../shaders/attention.wgsl?raw';
import { kernelVariants, packParams, type Kernel } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';
import { widthDefines, type Width } from '../wgsl';

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

/** Rows (t) per thread; must match `R` in the shader. */
const R = 4;
/** Lanes along s in attention_scores (rows) and attention_scores4 (4-column blocks). */
const WS = 32;
const WS4 = 16;
/** Threads per workgroup in attention_av4 / attention_atv4. */
const WG4 = 64;
/** Lanes along d (VT units) in attention_av / attention_backward_dqkv; more d go to grid z. */
const WD_MAX = 8;

/** One attention kernel variant: its entry, the width of the generic entries' VT, and its lane count. */
interface Variant {
  entry: Entry;
  width: Width;
  /** WS (scores), WD (av, backward_dqkv) or WG4 (av4, atv4); none for the softmax entries. */
  lanes?: number;
}

const LANE_KNOB: Partial<Record<Entry, 'WS' | 'WD' | 'WG4'>> = {
  attention_scores: 'WS',
  attention_scores4: 'WS',
  attention_av: 'WD',
  attention_backward_dqkv: 'WD',
  attention_av4: 'WG4',
  attention_atv4: 'WG4',
};

const makers = new Map<Entry, (v: Variant) => Kernel>();
function kernel(entry: Entry, width: Width, lanes?: number): Kernel {
  let make = makers.get(entry);
  if (!make) {
    make = kernelVariants<Variant>({
      name: (v) => `${v.entry}${v.width === 4 ? '' : '_scalar'}`,
      source: code,
      entry,
      defines: (v) => {
        const knob = LANE_KNOB[v.entry];
        return { ...widthDefines(v.width), ...(knob && v.lanes !== undefined ? { [knob]: v.lanes } : {}) };
      },
    });
    makers.set(entry, make);
  }
  return make(lanes === undefined ? { entry, width } : { entry, width, lanes });
}

interface Plan {
  width: Width;
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
  const w: Width = hs % 4 === 0 ? 4 : 1;
  const hsv = hs / w;
  const wd = WD_MAX; // fixed: one pipeline per variant (lavapipe compiles are slow); idle lanes return
  const tBlocks = Math.ceil(T / R);
  return {
    width: w,
    fast: w === 4 && T % 4 === 0 && !d.generic,
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
    rt.launch(kernel('attention_scores4', 4, WS4), { fs_a: a.qkv, fs_b: a.qkv, fs_dst: a.att }, pl.grid4s, params(d, pl, c3, 0, c3, pl.cv, pl.scale));
    rt.launch(kernel('attention_softmax4', 4), { fsm: a.att }, rt.grid1d(pl.rows, 64), params(d, pl, 0, 0, 0, 0, 1));
    rt.launch(kernel('attention_av4', 4, WG4), { fav_p: a.att, fav_x: a.qkv, fav_y: a.out }, pl.grid4, params(d, pl, c3, 2 * pl.cv, pl.cv, 0, 1));
    return;
  }
  // att <- q . k * scale (s <= t)
  rt.launch(
    kernel('attention_scores', pl.width, WS),
    { sc_a: a.qkv, sc_b: a.qkv, sdst: a.att },
    pl.gridRows,
    params(d, pl, c3, 0, c3, pl.cv, pl.scale),
  );
  rt.launch(kernel('attention_softmax', pl.width), { smx: a.att }, rt.grid1d(pl.rows, 64), params(d, pl, 0, 0, 0, 0, 1));
  // out <- att @ v
  rt.launch(kernel('attention_av', pl.width, pl.wd), { av_p: a.att, av_x: a.qkv, av_y: a.out }, pl.gridD, params(d, pl, c3, 2 * pl.cv, pl.cv, 0, 1));
}

/**
 * dqkv[B,T,3C] (OVERWRITTEN, every element including masked parts) from dout[B,T,C]; datt[B,NH,T,T] is scratch.
 * `att` must be attentionForward's output: its zeros above the diagonal are relied upon.
 */
export function attentionBackward(rt: Runtime, a: { dqkv: Tensor; datt: Tensor; dout: Tensor; qkv: Tensor; att: Tensor }, d: AttentionDims): void {
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
    rt.launch(kernel('attention_scores4', 4, WS4), { fs_a: a.dout, fs_b: a.qkv, fs_dst: a.datt }, pl.grid4s, params(d, pl, cv, 0, c3, 2 * cv, 1));
    rt.launch(
      kernel('attention_softmax_backward4', 4),
      { fsb_att: a.att, fsb_datt: a.datt },
      rt.grid1d(pl.rows, 64),
      params(d, pl, 0, 0, 0, 0, pl.scale),
    );
    // dq = datt @ k, dk = datt^T @ q, dv = att^T @ dout
    rt.launch(kernel('attention_av4', 4, WG4), { fav_p: a.datt, fav_x: a.qkv, fav_y: a.dqkv }, pl.grid4, params(d, pl, c3, cv, c3, 0, 1));
    rt.launch(kernel('attention_atv4', 4, WG4), { fav_p: a.datt, fav_x: a.qkv, fav_y: a.dqkv }, pl.grid4, params(d, pl, c3, 0, c3, cv, 1));
    rt.launch(kernel('attention_atv4', 4, WG4), { fav_p: a.att, fav_x: a.dout, fav_y: a.dqkv }, pl.grid4, params(d, pl, cv, 0, c3, 2 * cv, 1));
    return;
  }
  // datt <- dout . v (s <= t)
  rt.launch(
    kernel('attention_scores', pl.width, WS),
    { sc_a: a.dout, sc_b: a.qkv, sdst: a.datt },
    pl.gridRows,
    params(d, pl, pl.cv, 0, c3, 2 * pl.cv, 1),
  );
  // datt <- att * (datt - rowsum(att * datt)) * scale, zeros above the diagonal
  rt.launch(
    kernel('attention_softmax_backward', pl.width),
    { sb_att: a.att, sb_datt: a.datt },
    rt.grid1d(pl.rows, 64),
    params(d, pl, 0, 0, 0, 0, pl.scale),
  );
  // dq, dk, dv
  rt.launch(
    kernel('attention_backward_dqkv', pl.width, pl.wd),
    { bw_qkv: a.qkv, bw_att: a.att, bw_dout: a.dout, bw_datt: a.datt, bw_dqkv: a.dqkv },
    pl.gridD,
    params(d, pl, c3, pl.cv, 0, 0, 1),
  );
}
