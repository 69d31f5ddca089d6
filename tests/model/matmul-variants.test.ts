// The model's matmuls give the same bits whichever kernel runs them: every variant sums each output in the same
// fixed k order, the texture blocks read B from a copy of a weight view (an offset into the flat parameter store),
// and the bias gradients come from the dW launch (register blocks) or a bias_backward after it (naive): a forward and
// backward of a stage whose every matmul is forced onto one variant matches the others bit for bit.
import { describe, expect, it } from 'vitest';
import { applyTuning } from '../../src/gpu/autotune';
import { matmulChoiceTable, matmulShapeKey, variantKernel } from '../../src/gpu/ops/matmul';
import { gpt2ParamSpecs, type GPTConfig } from '../../src/model/config';
import { Stage } from '../../src/model/stage';
import { freshSeed, gpuRuntime, randInt, rng } from '../support/gpu';
import { randomParams } from '../support/params';

// n_embd 64: every weight's rows (64, 192, 256 floats) and the head's k (64) take the texture path
const cfg: GPTConfig = { n_layer: 1, n_head: 2, n_embd: 64, vocab_size: 11, block_size: 8 };

describe('matmul variants in the model', () => {
  it('a stage computes the same loss and gradients, bit for bit, on buffer, texture and naive matmuls', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const B = 2;
    const T = 8;
    const params = randomParams(gpt2ParamSpecs(cfg), seed);
    const inputs = randInt(B * T, cfg.vocab_size, rand);
    const targets = randInt(B * T, cfg.vocab_size, rand);
    const table = matmulChoiceTable(rt);
    const saved = [...table];
    const results: { variant: string; loss: number; grads: Float32Array }[] = [];
    try {
      for (const variant of ['rb8x8w8', 'rb16x8w8sgtex', 'naive']) {
        const st = new Stage(rt, cfg, { layerStart: 0, layerEnd: cfg.n_layer }, { B, T });
        table.clear();
        applyTuning(
          rt,
          st.matmulShapes().map((s) => ({ shape: matmulShapeKey(s), variant })),
        );
        if (variant.endsWith('tex')) {
          const viaTexture = st.matmulShapes().filter((s) => variantKernel(variant, s, rt).texB !== null);
          expect(viaTexture.length, 'matmuls reading B through a texture').toBeGreaterThanOrEqual(12);
        }
        st.params.load(params);
        st.zeroGrads();
        st.setTokens(0, inputs);
        st.setTargets(0, targets);
        const loss = (await rt.read(st.forward(0)))[0];
        st.backward(0, { lossScale: 1 / (B * T) });
        results.push({ variant, loss, grads: await st.params.readFlat('grads') });
      }
    } finally {
      table.clear();
      for (const [k, v] of saved) table.set(k, v);
    }
    const [first, ...rest] = results;
    expect(Number.isFinite(first.loss), `loss seed=${seed}`).toBe(true);
    expect(first.grads.some((g) => g !== 0)).toBe(true);
    for (const r of rest) {
      expect(Object.is(r.loss, first.loss), `${r.variant} vs ${first.variant}: loss seed=${seed}`).toBe(true);
      const diff = r.grads.findIndex((g, i) => !Object.is(g, first.grads[i]));
      expect(diff, `${r.variant} vs ${first.variant}: gradient ${diff} differs, seed=${seed}`).toBe(-1);
    }
  });
});
