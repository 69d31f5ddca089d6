// Flat buffers over one storage binding (src/gpu/chunks.ts): gradNorm and AdamW split their launches into views of
// at most rt.maxBindingBytes. With the limit lowered on one runtime, the split results must be BITWISE those of the
// whole-buffer launch on another runtime with the adapter's limit, at sizes that leave a ragged last range; then one
// real store past the adapter's own limit (128 MiB on lavapipe) trains through an AdamW step and a norm.
import { describe, expect, it } from 'vitest';
import { bindingRanges } from '../../src/gpu/chunks';
import { singleKernel } from '../../src/gpu/kernel';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import { adamwUpdate } from '../../src/gpu/ops/adamw';
import { gradNorm, gradNormScratchSize } from '../../src/gpu/ops/gradnorm';
import type { Runtime } from '../../src/gpu/runtime';
import { freshSeed, gpuRuntime, poison, randn, rng, withBindingLimit } from '../support/gpu';

const HYPER = { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, step: 3 };

/** One AdamW step and a clipped norm over n elements of the given host data; returns what the GPU holds after. */
async function run(rt: Runtime, g: Float32Array, p: Float32Array, m: Float32Array, v: Float32Array, n: number) {
  const t = (x: Float32Array, name: string) => rt.upload(x, [n], name);
  const [params, grads, mm, vv] = [t(p, 'params'), t(g, 'grads'), t(m, 'm'), t(v, 'v')];
  const partials = rt.tensor([gradNormScratchSize(n)], 'partials');
  const norm = rt.tensor([1], 'norm');
  const scale = rt.tensor([1], 'scale');
  poison(rt, partials, norm, scale);
  gradNorm(rt, { norm, scale, grads, partials }, { n, maxNorm: 0.5 });
  adamwUpdate(rt, { params, grads, m: mm, v: vv, gradScale: scale }, { n, ...HYPER });
  const out = { norm: await rt.read(norm), params: await rt.read(params), m: await rt.read(mm), v: await rt.read(vv) };
  for (const x of [params, grads, mm, vv, partials, norm, scale]) rt.release(x);
  return out;
}

const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

describe('ops over flat buffers larger than one binding', () => {
  it('bindingRanges: in order, covering, aligned, each within the limit', async () => {
    const rt = await gpuRuntime();
    const block = 4096 * rt.viewAlignment;
    const n = 10 * block + 7;
    await withBindingLimit(rt, 4 * 3 * block + 100, () => {
      const rs = bindingRanges(rt, n, block);
      expect(rs.length).toBe(4);
      expect(rs.reduce((a, r) => (expect(r.start).toBe(a), a + r.count), 0)).toBe(n);
      for (const r of rs) {
        expect(r.start % block).toBe(0);
        expect(r.count * 4).toBeLessThanOrEqual(rt.maxBindingBytes);
      }
      expect(bindingRanges(rt, 5)).toEqual([{ start: 0, count: 5 }]);
    });
    await withBindingLimit(rt, 16, () => expect(() => bindingRanges(rt, n, 4096)).toThrow(/holds less than one block/));
  });

  for (const n of [1_000_003, 4096 * 64 * 3 + 4095]) {
    it(`split launches are bitwise the whole launch (n=${n})`, async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const [g, p, m] = [randn(n, r, 0.01), randn(n, r, 0.02), randn(n, r, 0.001)];
      const v = randn(n, r, 1e-4).map((x) => x * x);
      const whole = await gpuRuntime();
      // A second device whose bindings hold ~1 MiB: gradNorm's ranges are whole 4096-blocks at aligned partial
      // offsets, AdamW's any aligned size.
      const split = await nodeRuntime({ quiet: true });
      split.maxBindingBytes = 4 * 4096 * split.viewAlignment + 4 * 1000;
      expect(bindingRanges(split, n, 4096 * split.viewAlignment).length).toBeGreaterThan(2);
      const a = await run(whole, g, p, m, v, n);
      const b = await run(split, g, p, m, v, n);
      const tag = `n=${n} seed=${seed}`;
      expect(bits(b.norm)[0], `norm ${tag}`).toBe(bits(a.norm)[0]);
      for (const k of ['params', 'm', 'v'] as const) {
        const [x, y] = [bits(a[k]), bits(b[k])];
        for (let i = 0; i < n; i++) if (x[i] !== y[i]) throw new Error(`${k}[${i}] differs: ${a[k][i]} vs ${b[k][i]} (${tag})`);
      }
      split.destroy();
    });
  }

  it('a launch binding more than the limit is refused by name, not left to a device error', async () => {
    const rt = await gpuRuntime();
    const n = 4096;
    const grads = rt.upload(new Float32Array(n), [n], 'big grads');
    const [norm, scale, partials] = [rt.tensor([1], 'norm'), rt.tensor([1], 'scale'), rt.tensor([1], 'partials')];
    // Below one gradNorm block: cannot be split.
    await withBindingLimit(rt, 1024, () =>
      expect(() => gradNorm(rt, { norm, scale, grads, partials }, { n, maxNorm: 1 })).toThrow(/holds less than one block/),
    );
    const k = singleKernel(
      'probe',
      '@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n@compute @workgroup_size(1) fn probe() { x[0] = 1.0; }',
      'probe',
    );
    await withBindingLimit(rt, 8192, () =>
      expect(() => rt.launch(k, { x: grads }, [1])).toThrow(/probe: binding x \(big grads\) is 16384 B, over the storage binding limit 8192 B/),
    );
    for (const t of [grads, norm, scale, partials]) rt.release(t);
  });

  it('a real store past the adapter limit: one AdamW step and a norm over 150 MiB per buffer', async () => {
    const rt = await gpuRuntime();
    const limit = rt.handle.report.limits.maxStorageBufferBindingSize;
    const n = Math.ceil((limit + 22 * 2 ** 20) / 4 / 4096) * 4096 + 3;
    expect(n * 4).toBeGreaterThan(limit);
    const g = new Float32Array(n);
    for (let i = 0; i < n; i++) g[i] = ((i % 97) - 48) * 1e-3;
    const grads = rt.upload(g, [n], 'grads');
    const [params, m, v] = [rt.tensor([n], 'params'), rt.tensor([n], 'm'), rt.tensor([n], 'v')];
    rt.fill(params, 0.5);
    rt.fill(m, 0);
    rt.fill(v, 0);
    const [norm, scale, partials] = [rt.tensor([1], 'norm'), rt.tensor([1], 'scale'), rt.tensor([gradNormScratchSize(n)], 'partials')];
    poison(rt, norm, scale, partials);
    gradNorm(rt, { norm, scale, grads, partials }, { n, maxNorm: 0.5 });
    adamwUpdate(rt, { params, grads, m, v, gradScale: scale }, { n, ...HYPER });
    let ref = 0;
    for (let i = 0; i < n; i++) ref += g[i] * g[i];
    const got = (await rt.read(norm))[0];
    expect(Math.abs(got - Math.sqrt(ref)) / Math.sqrt(ref)).toBeLessThan(1e-5);
    // AdamW from zero moments moves each parameter against its gradient's sign (after the decay): both ends and the
    // middle, i.e. in the first and the last binding range.
    const decayed = 0.5 * (1 - HYPER.lr * HYPER.weightDecay);
    for (const i of [0, 1, n >> 1, n - 2, n - 1]) {
      const base = i - (i % rt.viewAlignment);
      const at = (await rt.read(rt.view(params, base, [Math.min(rt.viewAlignment, n - base)], 'probe')))[i - base];
      const sign = Math.sign(g[i]);
      if (sign === 0) expect(at).toBeCloseTo(decayed, 7);
      else expect(Math.sign(decayed - at), `params[${i}] = ${at}`).toBe(sign);
    }
    for (const t of [grads, params, m, v, norm, scale, partials]) rt.release(t);
  }, 120_000);
});
