// Launchers for shaders/topk.wgsl: deterministic top-k by magnitude (bisection on the f32 bits for the threshold,
// a per-chunk tally, a one-thread plan, a compaction) and the scatter that decodes it. No readback in between.
import code from '../../shaders/topk.wgsl?raw';
import { kernelVariants, packParams } from '../gpu/kernel';
import type { Runtime } from '../gpu/runtime';
import { expectNoAliasing, expectSize, type Tensor } from '../gpu/tensor';

const variants = (entry: string) =>
  kernelVariants<boolean>({ name: (acc) => `${entry}${acc ? '_acc' : ''}`, source: code, entry, defines: (acc) => ({ ACC: acc }) });

const k = {
  count: variants('topk_count')(false),
  step: variants('topk_step')(false),
  tally: variants('topk_tally')(false),
  plan: variants('topk_plan')(false),
  compact: variants('topk_compact')(false),
  zero: variants('topk_zero')(false),
  scatter: variants('topk_scatter'),
};

/** Bisection rounds: the threshold's bits lie in [0, 2^31), halved each round. */
const ROUNDS = 31;

/** Elements one chunk thread walks: at least 256, and at most 2048 chunks. */
export function topkChunking(n: number): { chunk: number; nchunks: number } {
  const chunk = Math.max(256, Math.ceil(n / 2048));
  return { chunk, nchunks: Math.ceil(n / chunk) };
}

/** Scratch the selection needs: state [4] (u32), counts and plan [2 * nchunks] (u32) each. */
export interface TopkScratch {
  state: Tensor;
  counts: Tensor;
  plan: Tensor;
}

export function topkScratchSizes(n: number): { state: number; counts: number; plan: number } {
  const { nchunks } = topkChunking(n);
  return { state: 4, counts: 2 * nchunks, plan: 2 * nchunks };
}

function params(n: number, kk: number): ArrayBuffer {
  const { chunk, nchunks } = topkChunking(n);
  return packParams([
    ['u32', n],
    ['u32', chunk],
    ['u32', nchunks],
    ['u32', kk],
  ]);
}

/**
 * pairs[0..k) = the indices of the k largest |x| among x's first n (ties to the lower index), increasing;
 * pairs[k..2k) = their values' exact bits. 1 <= k <= n.
 */
export function topkSelect(rt: Runtime, x: Tensor, pairs: Tensor, s: TopkScratch, n: number, kk: number): void {
  const op = 'topk_select';
  if (!Number.isInteger(kk) || kk < 1 || kk > n) throw new Error(`${op}: k must be an integer in [1, ${n}], got ${kk}`);
  const sizes = topkScratchSizes(n);
  expectSize(op, 'x', x, n);
  expectSize(op, 'pairs', pairs, 2 * kk);
  expectSize(op, 'state', s.state, sizes.state);
  expectSize(op, 'counts', s.counts, sizes.counts);
  expectSize(op, 'plan', s.plan, sizes.plan);
  expectNoAliasing(op, [['x', x]], [['pairs', pairs]]);
  const { nchunks } = topkChunking(n);
  const p = params(n, kk);
  const grid = rt.grid1d(nchunks, 256);
  rt.write(s.state, new Uint32Array([0, 0x80000000, 0, 0])); // lo, hi, count(>= hi), unused
  for (let r = 0; r < ROUNDS; r++) {
    rt.launch(k.count, { sel_x: x, state_in: s.state, counts: s.counts }, grid, p);
    rt.launch(k.step, { counts_in: s.counts, state: s.state }, [1], p);
  }
  rt.launch(k.tally, { sel_x: x, state_in: s.state, counts: s.counts }, grid, p);
  rt.launch(k.plan, { counts_in: s.counts, plan: s.plan }, [1], p);
  rt.launch(k.compact, { sel_x: x, state_in: s.state, plan_in: s.plan, sel_out: pairs }, grid, p);
}

/** out[0..n) = 0, then out[idx[j]] = value[j] for the k pairs (acc: out[idx[j]] += value[j], nothing zeroed). */
export function topkScatter(rt: Runtime, pairs: Tensor, out: Tensor, n: number, kk: number, acc: boolean): void {
  const op = 'topk_scatter';
  expectSize(op, 'pairs', pairs, 2 * kk);
  expectSize(op, 'out', out, n);
  expectNoAliasing(op, [['pairs', pairs]], [['out', out]]);
  const p = params(n, kk);
  if (!acc) rt.launch(k.zero, { zero_out: out }, rt.grid1d(n, 256), p);
  const bind: Record<string, Tensor> = { pairs, [acc ? 'scatter_acc' : 'scatter_bits']: out };
  rt.launch(k.scatter(acc), bind, rt.grid1d(kk, 256), p);
}
