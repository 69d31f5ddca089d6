// A stage's share of the swarm's global gradient norm (Stage.gradSumSquares): over every parameter, or with
// `excludeTiedWte` without a first or a last stage's copy of the tied wte (the swarm counts the wte once, from the two
// copies' exchanged sum), against a float64 sum of the same gradients read back. Awkward sizes; the result poisoned
// before each run.
import { describe, expect, it } from 'vitest';
import { WTE, type GPTConfig } from '../../src/model/config';
import { Stage } from '../../src/model/stage';
import { freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';

const config: GPTConfig = { n_layer: 3, n_head: 3, n_embd: 24, vocab_size: 37, block_size: 7 };

function squares(x: Float32Array, from = 0): number {
  let s = 0;
  for (let i = from; i < x.length; i++) s += x[i] * x[i];
  return s;
}

describe('Stage.gradSumSquares', () => {
  for (const [role, layerStart, layerEnd] of [
    ['first', 0, 1],
    ['middle', 1, 2],
    ['last', 2, 3],
  ] as const) {
    it(`${role} stage: every parameter, and without the tied wte`, async () => {
      const rt = await gpuRuntime();
      const stage = new Stage(rt, config, { layerStart, layerEnd }, { B: 2, T: 7 });
      const ps = stage.params;
      // Random gradients in every tensor's slot; the alignment padding between slots stays zero, as in training.
      const rand = rng(freshSeed());
      const grads = new Float32Array(ps.total);
      for (const slot of ps.slots) grads.set(randn(slot.size, rand), slot.offset);
      ps.writeFlat('grads', grads);
      const held = await ps.readFlat('grads');
      expect(held).toEqual(grads);
      const wte = ps.byName.get(WTE);
      expect(!!wte).toBe(role !== 'middle');
      for (const exclude of [false, true]) {
        poison(rt, stage.gradNormValue);
        const got = await stage.gradSumSquares({ excludeTiedWte: exclude });
        // wte is the first tensor of the store: without it, the sum starts after its slot.
        const from = exclude && wte ? wte.offset + wte.size : 0;
        const want = squares(held, from);
        expect(Math.abs(got - want)).toBeLessThan(1e-5 * want);
        if (exclude && wte)
          expect(Math.abs(got + squares(held.subarray(wte.offset, wte.offset + wte.size)) - squares(held))).toBeLessThan(1e-5 * want);
      }
    });
  }
});
