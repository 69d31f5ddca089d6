import { describe, expect, it } from 'vitest';
import { gradNorm, gradNormScratchSize } from '../../src/gpu/ops/gradnorm';
import { expectClose, freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';

/** PyTorch clip_grad_norm_ in float64: total norm and the clip factor clamp(maxNorm / (norm + 1e-6), max=1). */
function refGradNorm(g: ArrayLike<number>, n: number, maxNorm: number): { norm: number; scale: number } {
  let s = 0;
  for (let i = 0; i < n; i++) s += g[i] * g[i];
  const norm = Math.sqrt(s);
  return { norm, scale: maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1 };
}

describe('gradnorm', () => {
  for (const n of [1, 255, 257, 4096, 4097, 100_003, 1_000_003]) {
    it(`norm and clip factor match float64 at n=${n}`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const rt = await gpuRuntime();
      const g = randn(n, rand, 0.01);
      const grads = rt.upload(g, [n], 'grads');
      const P = gradNormScratchSize(n);
      expect(P).toBe(Math.max(1, Math.ceil(n / 4096)));
      const partials = rt.tensor([P], 'partials');
      const norm = rt.tensor([1], 'norm');
      const scale = rt.tensor([1], 'scale');
      const ref0 = refGradNorm(g, n, 1);
      // one maxNorm below the norm (clips), one above (does not), and 0 (disabled)
      for (const maxNorm of [ref0.norm * 0.3, ref0.norm * 3 + 1e-3, 0]) {
        poison(rt, partials, norm, scale);
        gradNorm(rt, { norm, scale, grads, partials }, { n, maxNorm });
        const gotNorm = await rt.read(norm);
        const gotScale = await rt.read(scale);
        const ref = refGradNorm(g, n, maxNorm);
        const tag = `n=${n} maxNorm=${maxNorm} seed=${seed}`;
        expectClose(`norm ${tag}`, gotNorm, [ref.norm], 0, 1e-5);
        expectClose(`scale ${tag}`, gotScale, [ref.scale], 0, 1e-5);
        if (maxNorm === 0 || maxNorm > ref.norm) expect(gotScale[0], `no clipping ${tag}`).toBe(1);
        else expect(gotScale[0], `clipping ${tag}`).toBeLessThan(1);
        // determinism
        gradNorm(rt, { norm, scale, grads, partials }, { n, maxNorm });
        const again = await rt.read(norm);
        expect(new Uint32Array(again.buffer)[0], `bitwise determinism ${tag}`).toBe(new Uint32Array(gotNorm.buffer)[0]);
      }
      // grads are not modified
      const after = await rt.read(grads);
      for (let i = 0; i < n; i++) if (after[i] !== g[i]) throw new Error(`grads modified at ${i} n=${n} seed=${seed}`);
      for (const t of [grads, partials, norm, scale]) rt.release(t);
    });
  }

  it('reduces only the first n elements of a view into a larger flat buffer', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const total = 20_000;
    const g = randn(total, rand);
    const flat = rt.upload(g, [total], 'flat grads');
    const off = 4 * rt.viewAlignment; // a nonzero aligned offset
    const n = 10_007;
    const view = rt.view(flat, off, [12_000], 'grads view');
    const partials = rt.tensor([gradNormScratchSize(n)], 'partials');
    const norm = rt.tensor([1], 'norm');
    const scale = rt.tensor([1], 'scale');
    poison(rt, partials, norm, scale);
    gradNorm(rt, { norm, scale, grads: view, partials }, { n, maxNorm: 1 });
    const ref = refGradNorm(g.subarray(off), n, 1);
    expectClose(`view norm seed=${seed}`, await rt.read(norm), [ref.norm], 0, 1e-5);
    expectClose(`view scale seed=${seed}`, await rt.read(scale), [ref.scale], 0, 1e-5);
  });

  it('n = 0 gives norm 0 and scale 1; zero gradients do not divide by zero', async () => {
    const rt = await gpuRuntime();
    const grads = rt.upload(new Float32Array(300), [300], 'zero grads');
    const partials = rt.tensor([1], 'partials');
    const norm = rt.tensor([1], 'norm');
    const scale = rt.tensor([1], 'scale');
    for (const n of [0, 300]) {
      poison(rt, partials, norm, scale);
      gradNorm(rt, { norm, scale, grads, partials }, { n, maxNorm: 1 });
      expect(Array.from(await rt.read(norm)), `n=${n}`).toEqual([0]);
      expect(Array.from(await rt.read(scale)), `n=${n}`).toEqual([1]);
    }
  });

  it('names the op when sizes are wrong or buffers alias', async () => {
    const rt = await gpuRuntime();
    const grads = rt.tensor([10_000], 'grads');
    const partials = rt.tensor([3], 'partials');
    const norm = rt.tensor([1], 'norm');
    const scale = rt.tensor([1], 'scale');
    expect(() => gradNorm(rt, { norm, scale, grads, partials: rt.tensor([2], 'p2') }, { n: 10_000, maxNorm: 1 })).toThrow(
      /gradnorm: partials p2 holds 2 elements, needs 3/,
    );
    expect(() => gradNorm(rt, { norm, scale, grads, partials }, { n: 10_001, maxNorm: 1 })).toThrow(
      /gradnorm: grads grads holds 10000 elements, needs 10001/,
    );
    expect(() => gradNorm(rt, { norm, scale: rt.tensor([0], 'empty'), grads, partials }, { n: 10, maxNorm: 1 })).toThrow(/gradnorm: scale empty/);
    expect(() => gradNorm(rt, { norm, scale: norm, grads, partials }, { n: 10, maxNorm: 1 })).toThrow(/gradnorm: .*overlapping/);
    expect(() => gradNorm(rt, { norm, scale, grads, partials: grads }, { n: 10, maxNorm: 1 })).toThrow(/gradnorm: .*share a buffer/);
    expect(() => gradNorm(rt, { norm, scale, grads, partials }, { n: 10, maxNorm: -1 })).toThrow(/gradnorm: maxNorm/);
    await rt.flush();
  });
});
