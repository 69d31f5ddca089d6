import { describe, expect, it } from 'vitest';
import { adamwUpdate } from '../../src/gpu/ops/adamw';
import { gradNorm, gradNormScratchSize } from '../../src/gpu/ops/gradnorm';
import { expectClose, freshSeed, gpuRuntime, randn, rng } from '../support/gpu';

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW (single-tensor, amsgrad=False) in float64, one step. */
function refStep(p: Float64Array, m: Float64Array, v: Float64Array, g: ArrayLike<number>, gs: number, h: Hyper, step: number): void {
  const bc1 = 1 - h.beta1 ** step;
  const bc2 = 1 - h.beta2 ** step;
  const stepSize = h.lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * gs;
    p[i] *= 1 - h.lr * h.weightDecay;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi;
    p[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + h.eps);
  }
}

const STEPS = 4;

describe('adamw', () => {
  const hypers: [string, Hyper, number][] = [
    ['wd 0.1, gradScale 1', { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, 1],
    ['wd 0, gradScale 0.37', { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, 0.37],
    ['wd 0.5, gradScale 0.05, big eps', { lr: 1e-2, beta1: 0.8, beta2: 0.99, eps: 1e-3, weightDecay: 0.5 }, 0.05],
  ];
  for (const n of [1, 255, 257, 100_003]) {
    for (const [name, h, gs] of hypers) {
      it(`${STEPS} steps match float64 PyTorch semantics at n=${n} (${name})`, async () => {
        const seed = freshSeed();
        const rand = rng(seed);
        const rt = await gpuRuntime();
        const p0 = randn(n, rand);
        const params = rt.upload(p0, [n], 'params');
        const m = rt.upload(new Float32Array(n), [n], 'm');
        const v = rt.upload(new Float32Array(n), [n], 'v');
        const grads = rt.tensor([n], 'grads');
        const gradScale = rt.upload(new Float32Array([gs]), [1], 'gradScale');
        const rp = Float64Array.from(p0);
        const rm = new Float64Array(n);
        const rv = new Float64Array(n);
        const fgs = Math.fround(gs);
        for (let step = 1; step <= STEPS; step++) {
          const g = randn(n, rand, 0.1);
          rt.write(grads, g);
          adamwUpdate(rt, { params, grads, m, v, gradScale }, { n, ...h, step });
          refStep(rp, rm, rv, g, fgs, h, step);
          const tag = `n=${n} ${name} step=${step} seed=${seed}`;
          // m and v are sums of terms of size ~|g| and ~g^2 that can cancel: f32 rounding is absolute at that scale
          expectClose(`m ${tag}`, await rt.read(m), rm, 2e-8, 1e-5);
          expectClose(`v ${tag}`, await rt.read(v), rv, 2e-9, 1e-5);
          expectClose(`params ${tag}`, await rt.read(params), rp, 2e-6, 1e-6);
        }
        for (const t of [params, m, v, grads, gradScale]) rt.release(t);
      });
    }
  }

  it('updates exactly the view it is given inside flat buffers (decay group split) and is deterministic', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const total = 3000;
    const split = 8 * rt.viewAlignment; // decayed tensors first, then the rest
    const p0 = randn(total, rand);
    const g = randn(total, rand, 0.1);
    const run = async () => {
      const flatP = rt.upload(p0, [total], 'flat params');
      const flatG = rt.upload(g, [total], 'flat grads');
      const flatM = rt.upload(new Float32Array(total), [total], 'flat m');
      const flatV = rt.upload(new Float32Array(total), [total], 'flat v');
      const gradScale = rt.upload(new Float32Array([0.5]), [1], 'gradScale');
      const h = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8 };
      const nb = 1000; // second group's n: leaves the tail [split + nb, total) untouched
      for (let step = 1; step <= 2; step++) {
        const views = (o: number, len: number) =>
          [rt.view(flatP, o, [len], 'p'), rt.view(flatG, o, [len], 'g'), rt.view(flatM, o, [len], 'm'), rt.view(flatV, o, [len], 'v')] as const;
        const [pa, ga, ma, va] = views(0, split);
        adamwUpdate(rt, { params: pa, grads: ga, m: ma, v: va, gradScale }, { n: split, ...h, weightDecay: 0.1, step });
        const [pb, gb, mb, vb] = views(split, total - split);
        adamwUpdate(rt, { params: pb, grads: gb, m: mb, v: vb, gradScale }, { n: nb, ...h, weightDecay: 0, step });
      }
      const out = await rt.read(flatP);
      const rp1 = Float64Array.from(p0.subarray(0, split));
      const rp2 = Float64Array.from(p0.subarray(split, split + nb));
      const [m1, v1, m2, v2] = [new Float64Array(split), new Float64Array(split), new Float64Array(nb), new Float64Array(nb)];
      for (let step = 1; step <= 2; step++) {
        refStep(rp1, m1, v1, g.subarray(0, split), 0.5, { ...h, weightDecay: 0.1 }, step);
        refStep(rp2, m2, v2, g.subarray(split, split + nb), 0.5, { ...h, weightDecay: 0 }, step);
      }
      expectClose(`decayed group seed=${seed}`, out.subarray(0, split), rp1, 2e-6, 1e-6);
      expectClose(`no-decay group seed=${seed}`, out.subarray(split, split + nb), rp2, 2e-6, 1e-6);
      for (let i = split + nb; i < total; i++) if (out[i] !== p0[i]) throw new Error(`param ${i} past n changed seed=${seed}`);
      for (const t of [flatP, flatG, flatM, flatV, gradScale]) rt.release(t);
      return out;
    };
    const a = await run();
    const b = await run();
    const ua = new Uint32Array(a.buffer);
    const ub = new Uint32Array(b.buffer);
    for (let i = 0; i < total; i++) if (ua[i] !== ub[i]) throw new Error(`runs differ at ${i} seed=${seed}`);
  });

  it('chains with gradNorm: clipped gradients feed the update through the scale tensor', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const n = 5000;
    const p0 = randn(n, rand);
    const g = randn(n, rand);
    let sq = 0;
    for (const x of g) sq += x * x;
    const maxNorm = 1;
    const clip = Math.min(1, maxNorm / (Math.sqrt(sq) + 1e-6));
    expect(clip).toBeLessThan(0.1);
    const params = rt.upload(p0, [n], 'params');
    const grads = rt.upload(g, [n], 'grads');
    const m = rt.upload(new Float32Array(n), [n], 'm');
    const v = rt.upload(new Float32Array(n), [n], 'v');
    const norm = rt.tensor([1], 'norm');
    const scale = rt.tensor([1], 'scale');
    const partials = rt.tensor([gradNormScratchSize(n)], 'partials');
    const h = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
    gradNorm(rt, { norm, scale, grads, partials }, { n, maxNorm });
    adamwUpdate(rt, { params, grads, m, v, gradScale: scale }, { n, ...h, step: 1 });
    const rp = Float64Array.from(p0);
    const rm = new Float64Array(n);
    const rv = new Float64Array(n);
    refStep(rp, rm, rv, g, clip, h, 1);
    expectClose(`m seed=${seed}`, await rt.read(m), rm, 2e-8, 2e-5);
    expectClose(`params seed=${seed}`, await rt.read(params), rp, 2e-6, 1e-6);
  });

  it('folds n beyond 65535 workgroups into the grid y dimension (n = 16.8M + 3)', async () => {
    const rt = await gpuRuntime();
    const n = 65_535 * 256 + 3;
    const params = rt.upload(new Float32Array(n).fill(1), [n], 'params');
    const grads = rt.upload(new Float32Array(n).fill(0.5), [n], 'grads');
    const m = rt.tensor([n], 'm');
    const v = rt.tensor([n], 'v');
    rt.fill(m, 0);
    rt.fill(v, 0);
    const gradScale = rt.upload(new Float32Array([1]), [1], 'gradScale');
    expect(rt.grid1d(n, 256)[1]).toBeGreaterThan(1);
    adamwUpdate(rt, { params, grads, m, v, gradScale }, { n, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 });
    const out = await rt.read(params);
    // step 1 with g constant: update = lr * g / (|g| + eps') = 0.01 exactly enough for 1e-6
    for (const i of [0, 1, 255, 256, 65_535 * 256 - 1, 65_535 * 256, n - 1]) expect(Math.abs(out[i] - 0.99), `element ${i}`).toBeLessThan(1e-6);
    for (let i = 0; i < n; i += 4099) if (Math.abs(out[i] - 0.99) > 1e-6) throw new Error(`element ${i} is ${out[i]}`);
    for (const t of [params, grads, m, v, gradScale]) rt.release(t);
  });

  it('names the op when sizes or hyperparameters are wrong or buffers alias', async () => {
    const rt = await gpuRuntime();
    const t = (n: number, l: string) => rt.tensor([n], l);
    const [params, grads, m, v, gs] = [t(100, 'params'), t(100, 'grads'), t(100, 'm'), t(99, 'v'), t(1, 'gs')];
    const h = { n: 100, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 };
    expect(() => adamwUpdate(rt, { params, grads, m, v, gradScale: gs }, h)).toThrow(/adamw: v v holds 99 elements, needs 100/);
    const v2 = t(100, 'v2');
    expect(() => adamwUpdate(rt, { params, grads, m, v: v2, gradScale: t(0, 'none') }, h)).toThrow(/adamw: gradScale none holds 0 elements, needs 1/);
    expect(() => adamwUpdate(rt, { params, grads, m, v: v2, gradScale: gs }, { ...h, step: 0 })).toThrow(/adamw: step/);
    expect(() => adamwUpdate(rt, { params, grads, m, v: v2, gradScale: gs }, { ...h, beta2: 1 })).toThrow(/adamw: beta2/);
    expect(() => adamwUpdate(rt, { params, grads: params, m, v: v2, gradScale: gs }, h)).toThrow(/adamw: .*share a buffer/);
    expect(() => adamwUpdate(rt, { params, grads, m, v: m, gradScale: gs }, h)).toThrow(/adamw: .*overlapping/);
    await rt.flush();
  });
});
