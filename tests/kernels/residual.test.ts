import { describe, expect, it } from 'vitest';
import { accumulate, residualForward } from '../../src/gpu/ops/residual';
import { expectClose, freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';

describe('residual', () => {
  for (const n of [1, 255, 257, 1000, 70_001]) {
    it(`forward and accumulate match float64 at n=${n}`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const rt = await gpuRuntime();
      const a = randn(n, rand);
      const b = randn(n, rand);
      const ta = rt.upload(a, [n], 'a');
      const tb = rt.upload(b, [n], 'b');
      const out = rt.tensor([n], 'out');
      poison(rt, out);
      residualForward(rt, out, ta, tb);
      const got = await rt.read(out);
      expectClose(`residual n=${n} seed=${seed}`, got, Array.from(a, (x, i) => x + b[i]), 1e-6, 1e-6);
      accumulate(rt, out, ta);
      const got2 = await rt.read(out);
      expectClose(`accumulate n=${n} seed=${seed}`, got2, Array.from(a, (x, i) => x + b[i] + x), 1e-5, 1e-6);
    });
  }
  it('names the op when shapes are wrong', async () => {
    const rt = await gpuRuntime();
    const a = rt.tensor([10], 'small');
    const out = rt.tensor([20], 'out');
    expect(() => residualForward(rt, out, a, a)).toThrow(/residual_forward: a small holds 10 elements, needs 20/);
  });
});
