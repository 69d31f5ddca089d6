import { describe, expect, it } from 'vitest';
import type { GPTConfig } from './config';
import { partitionLayers } from './layer-partition';
import { rng } from '../../tests/support/random';
import { stageMemory } from './stage-memory';

const GPT2_SMALL: GPTConfig = { n_layer: 12, n_embd: 768, n_head: 12, vocab_size: 50257, block_size: 1024 };
const dims = { B: 1, T: 256 };

describe('partitionLayers', () => {
  it('one stage when the largest budget holds the whole model', () => {
    const whole = stageMemory(GPT2_SMALL, { layerStart: 0, layerEnd: 12 }, dims).processTotal;
    const p = partitionLayers({ config: GPT2_SMALL, dims, slots: 1, budgets: [whole / 2, whole] });
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.ranges).toEqual([{ layerStart: 0, layerEnd: 12 }]);
    expect(p.peers).toEqual([1]);
    expect(p.modelBytes).toBe(whole);
  });

  // With today's head (logits, probs and dlogits [T, 50257] f32, and the tied wte with its AdamW state on the last
  // stage) the last stage of one layer needs 874 MiB of the whole model's 2,240 at T=256: 39 %. Under a third needs the
  // vocabulary-chunked head and loss (issue 13).
  it('GPT-2 small over 4 peers, each under 40 % of the whole: contiguous stages, each within its peer budget', () => {
    const whole = stageMemory(GPT2_SMALL, { layerStart: 0, layerEnd: 12 }, dims).processTotal;
    const budgets = [0.4, 0.39, 0.395, 0.4].map((f) => Math.floor(f * whole));
    const p = partitionLayers({ config: GPT2_SMALL, dims, slots: 1, budgets });
    expect(p.ok, p.ok ? '' : p.reason).toBe(true);
    if (!p.ok) return;
    expect(p.ranges.length).toBe(4);
    expect(p.ranges[0].layerStart).toBe(0);
    expect(p.ranges[3].layerEnd).toBe(12);
    for (let s = 1; s < 4; s++) expect(p.ranges[s].layerStart).toBe(p.ranges[s - 1].layerEnd);
    expect(new Set(p.peers).size).toBe(4);
    p.ranges.forEach((r, s) => {
      expect(p.bytes[s]).toBe(stageMemory(GPT2_SMALL, r, dims).peerTotal);
      expect(p.bytes[s]).toBeLessThanOrEqual(budgets[p.peers[s]]);
    });
    expect(Math.max(...p.bytes)).toBeLessThan(0.4 * whole);
    // Three budgets of that size are not enough: the run is refused with the reason.
    expect(partitionLayers({ config: GPT2_SMALL, dims, slots: 1, budgets: budgets.slice(0, 3) }).ok).toBe(false);
  });

  // Issue 13's split: at B=4, T=256 on a 128 MiB binding (the head and loss vocabulary-chunked), 4 peers each under a
  // third of the whole model's training memory hold GPT-2 small; the end stages carry wte and its AdamW state.
  it('GPT-2 small over 4 peers each under a third of the whole (B=4, T=256, 128 MiB bindings)', () => {
    const d = { B: 4, T: 256 };
    const maxBinding = 128 * 2 ** 20;
    const whole = stageMemory(GPT2_SMALL, { layerStart: 0, layerEnd: 12 }, d, { maxBindingBytes: maxBinding }).processTotal;
    const budget = Math.floor(whole / 3) - 1;
    const p = partitionLayers({ config: GPT2_SMALL, dims: d, slots: 1, budgets: [budget, budget, budget, budget], maxBinding });
    expect(p.ok, p.ok ? '' : p.reason).toBe(true);
    if (!p.ok) return;
    expect(p.modelBytes).toBe(whole);
    expect(p.ranges.length).toBe(4);
    expect(p.ranges[0]).toEqual({ layerStart: 0, layerEnd: 1 });
    expect(p.ranges[3]).toEqual({ layerStart: 11, layerEnd: 12 });
    for (const b of p.bytes) expect(b).toBeLessThanOrEqual(budget);
    // Without the chunked head (no binding limit known) the last stage alone is over the budget.
    expect(partitionLayers({ config: GPT2_SMALL, dims: d, slots: 1, budgets: [budget, budget, budget, budget] }).ok).toBe(false);
    // Each peer's own limit (peer-info maxBindingBytes) does the same as a common one.
    const own = partitionLayers({
      config: GPT2_SMALL,
      dims: d,
      slots: 1,
      budgets: [budget, budget, budget, budget],
      bindings: [maxBinding, maxBinding, maxBinding, maxBinding],
    });
    expect(own.ok && own.bytes).toEqual(p.bytes);
    expect(own.modelBytes).toBe(whole);
    // A peer whose adapter binds wte whole runs the whole-vocabulary head: planned for the last stage, it cannot hold it.
    expect(
      partitionLayers({
        config: GPT2_SMALL,
        dims: d,
        slots: 1,
        budgets: [budget, budget, budget, budget],
        bindings: [2 ** 31, maxBinding, maxBinding, maxBinding],
      }).ok,
    ).toBe(false);
  });

  it('says the swarm is too small, and names the binding limit when one tensor cannot be bound', () => {
    const whole = stageMemory(GPT2_SMALL, { layerStart: 0, layerEnd: 12 }, dims).processTotal;
    const small = partitionLayers({ config: GPT2_SMALL, dims, slots: 1, budgets: [whole / 20, whole / 20, whole / 20] });
    expect(small.ok).toBe(false);
    if (!small.ok) expect(small.reason).toMatch(/the swarm is too small for this model .* cannot hold the model's 12 layers/);
    // wte [50257, 768] f32 is 154 MB, over a 128 MiB binding: the encoder and the head split it by vocabulary rows
    // and AdamW binds the flat store in ranges, so only tensors bound whole count. mlp.c_fc [768, 3072] is 9 MiB.
    expect(partitionLayers({ config: GPT2_SMALL, dims, slots: 1, budgets: [whole, whole], maxBinding: 128 * 2 ** 20 }).ok).toBe(true);
    const bound = partitionLayers({ config: GPT2_SMALL, dims, slots: 1, budgets: [whole, whole], maxBinding: 8 * 2 ** 20 });
    expect(bound.ok).toBe(false);
    if (!bound.ok) expect(bound.reason).toMatch(/the first stage has a tensor \(9.0 MiB\) over the 8.0 MiB storage binding limit/);
    expect(partitionLayers({ config: GPT2_SMALL, dims, slots: 1, budgets: [0, Number.NaN, -1] }).ok).toBe(false);
  });

  it('random small models: a plan always fits; no plan only when no split of the same stage count fits (brute force)', () => {
    const r = rng(7);
    for (let trial = 0; trial < 200; trial++) {
      const L = 1 + Math.floor(r() * 5);
      const NH = 1 + Math.floor(r() * 3);
      const config: GPTConfig = {
        n_layer: L,
        n_head: NH,
        n_embd: NH * (4 + Math.floor(r() * 8)),
        vocab_size: 5 + Math.floor(r() * 200),
        block_size: 32,
      };
      const d = { B: 1 + Math.floor(r() * 3), T: 1 + Math.floor(r() * 32) };
      const whole = stageMemory(config, { layerStart: 0, layerEnd: L }, d).processTotal;
      const budgets = Array.from({ length: 1 + Math.floor(r() * 4) }, () => Math.floor(whole * (0.15 + r() * 0.9)));
      const p = partitionLayers({ config, dims: d, slots: 1, budgets });
      const fitsSplit = (cuts: number[], order: number[]) =>
        cuts.slice(0, -1).every((a, s) => stageMemory(config, { layerStart: a, layerEnd: cuts[s + 1] }, d).peerTotal <= order[s]);
      if (p.ok) {
        p.ranges.forEach((rg, s) => expect(stageMemory(config, rg, d).peerTotal).toBeLessThanOrEqual(budgets[p.peers[s]]));
        expect(p.ranges.map((x) => x.layerEnd - x.layerStart).reduce((a, b) => a + b, 0)).toBe(L);
      } else {
        // Brute force over every split into S <= min(peers, L) stages with the same placement of budgets.
        const sorted = [...budgets].sort((a, b) => b - a);
        for (let S = 1; S <= Math.min(budgets.length, L); S++) {
          const top = sorted.slice(0, S);
          const order = S === 1 ? [top[0]] : [top[1], ...top.slice(2), top[0]];
          const walk = (cuts: number[]): boolean => {
            const last = cuts[cuts.length - 1];
            if (cuts.length === S) return fitsSplit([...cuts, L], order);
            for (let c = last + 1; c < L; c++) if (walk([...cuts, c])) return true;
            return false;
          };
          expect(walk([0]), `trial ${trial}: a ${S}-stage split fits`).toBe(false);
        }
      }
    }
  });
});
