// Causal multi-head self-attention (GPT-2), forward and backward. Shapes in shaders/attention.wgsl.
// qkv [B,T,3C] (q | k | v), out [B,T,C], att/datt [B,NH,T,T], dout [B,T,C], dqkv [B,T,3C]; hs = C / NH.
// Head sizes that are a multiple of 4 use vec4 loads; others a scalar variant of the same shader.
import code from '../../../shaders/attention.wgsl?raw';
import { defineKernel, packParams, type Kernel } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';

export interface AttentionDims {
  B: number;
  T: number;
  C: number;
  NH: number;
}

type Entry = 'attention_forward' | 'attention_backward_rows' | 'attention_backward_cols';

const BINDINGS: Record<Entry, Kernel['bindings']> = {
  attention_forward: ['uniform', 'read', 'rw', 'rw'],
  attention_backward_rows: ['uniform', 'read', 'read', 'read', 'rw'],
  attention_backward_cols: ['uniform', 'read', 'read', 'read', 'read', 'rw'],
};

const VT_BLOCK = /\/\/ VT-BEGIN[\s\S]*?\/\/ VT-END/;
const SCALAR_VT = '// VT-BEGIN (scalar variant)\nalias VT = f32;\nconst VW: u32 = 1u;\nfn hsum(x: VT) -> f32 { return x; }\n// VT-END';
if (!VT_BLOCK.test(code)) throw new Error('attention.wgsl: VT-BEGIN/VT-END block missing');
const scalarCode = code.replace(VT_BLOCK, SCALAR_VT);

/** Rows per workgroup (threads along t). */
export const ATTENTION_WG = 64;

const kernels = new Map<string, Kernel>();
function kernel(entry: Entry, vec4: boolean, wg: number): Kernel {
  const key = `${entry}:${vec4 ? 'v4' : 's'}:${wg}`;
  let k = kernels.get(key);
  if (!k) {
    k = defineKernel({
      name: `${entry}${vec4 ? '' : '_scalar'}`,
      code: vec4 ? code : scalarCode,
      entry,
      bindings: BINDINGS[entry],
      constants: { WG: wg },
    });
    kernels.set(key, k);
  }
  return k;
}

interface Plan {
  vec4: boolean;
  params: ArrayBuffer;
  grid: [number, number];
  wg: number;
}

function plan(op: string, d: AttentionDims): Plan {
  const { B, T, C, NH } = d;
  for (const [k, v] of Object.entries({ B, T, C, NH })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: ${k} must be a positive integer, got ${v}`);
  }
  if (C % NH !== 0) throw new Error(`${op}: C ${C} is not divisible by NH ${NH}`);
  if (B * NH * T * T > 0xffffffff || B * T * 3 * C > 0xffffffff) throw new Error(`${op}: shape ${B}x${T}x${C}/${NH} overflows u32 indexing`);
  const hs = C / NH;
  const vec4 = hs % 4 === 0;
  const w = vec4 ? 4 : 1;
  const wg = ATTENTION_WG;
  const params = packParams([
    ['u32', T],
    ['u32', NH],
    ['u32', C / w],
    ['u32', hs / w],
    ['f32', 1 / Math.sqrt(hs)],
  ]);
  return { vec4, params, grid: [Math.ceil(T / wg), B * NH], wg };
}

/** out[B,T,C] = causal attention of qkv[B,T,3C]; saves att[B,NH,T,T] (softmax probabilities; entries s>t written as 0) for backward. */
export function attentionForward(rt: Runtime, a: { out: Tensor; att: Tensor; qkv: Tensor }, d: AttentionDims): void {
  const op = 'attention_forward';
  const pl = plan(op, d);
  const { B, T, C, NH } = d;
  expectSize(op, 'qkv', a.qkv, B * T * 3 * C);
  expectSize(op, 'out', a.out, B * T * C);
  expectSize(op, 'att', a.att, B * NH * T * T);
  rt.launch(kernel(op, pl.vec4, pl.wg), [a.qkv, a.att, a.out], pl.grid, pl.params);
}

/** dqkv[B,T,3C] (OVERWRITTEN, every element including masked parts) from dout[B,T,C]; datt[B,NH,T,T] is scratch. */
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
  rt.launch(kernel('attention_backward_rows', pl.vec4, pl.wg), [a.qkv, a.att, a.dout, a.datt], pl.grid, pl.params);
  rt.launch(kernel('attention_backward_cols', pl.vec4, pl.wg), [a.qkv, a.att, a.dout, a.datt, a.dqkv], pl.grid, pl.params);
}
