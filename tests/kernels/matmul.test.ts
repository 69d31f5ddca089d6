import { describe, expect, it } from 'vitest';
import { tuneMatmul, matmulChoices, exportTuning, importTuning } from '../../src/gpu/autotune';
import { acquireDevice } from '../../src/gpu/device';
import { nodeGpu } from '../../src/gpu/node-gpu';
import {
  biasBackward,
  chooseVariant,
  matmul,
  matmulWith,
  MATMUL_VARIANTS,
  REGISTER_BLOCKS,
  subgroupsUsable,
  variantKernel,
  type MatmulCase,
} from '../../src/gpu/ops/matmul';
import { Runtime } from '../../src/gpu/runtime';
import type { Tensor } from '../../src/gpu/tensor';
import { expectClose, freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';
import { caseName, type MatmulTestCase } from '../support/matmul-case';

type Case = MatmulTestCase;
const name = caseName;

/** float64 reference: init + op(a) @ op(b) + bias */
function reference(c: Case, a: Float32Array, b: Float32Array, bias: Float32Array | null, init: Float32Array | null): Float64Array {
  const { M, N, K } = c;
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = c.transA ? a[k * M + m] : a[m * K + k];
        const bv = c.transB ? b[n * K + k] : b[k * N + n];
        s += av * bv;
      }
      if (bias) s += bias[n];
      if (init) s += init[m * N + n];
      out[m * N + n] = s;
    }
  }
  return out;
}

/** Runs one case with one variant; returns the output. */
async function runCase(
  rt: Runtime,
  variant: string | null,
  c: Case,
  seed: number,
  biasGrad?: Tensor,
): Promise<{ got: Float32Array; want: Float64Array }> {
  const rand = rng(seed);
  const a = randn(c.M * c.K, rand);
  const b = randn(c.K * c.N, rand);
  const bias = c.bias ? randn(c.N, rand) : null;
  const init = c.accumulate ? randn(c.M * c.N, rand) : null;
  const ta = rt.upload(a, c.transA ? [c.K, c.M] : [c.M, c.K], 'a');
  const tb = rt.upload(b, c.transB ? [c.N, c.K] : [c.K, c.N], 'b');
  const tbias = bias ? rt.upload(bias, [c.N], 'bias') : undefined;
  const out = rt.tensor([c.M, c.N], 'out');
  if (init) rt.write(out, init);
  else poison(rt, out);
  const args = { out, a: ta, b: tb, bias: tbias, biasGrad, M: c.M, N: c.N, K: c.K, transA: c.transA, transB: c.transB, accumulate: c.accumulate };
  if (variant) matmulWith(rt, variant, args);
  else matmul(rt, args);
  const got = await rt.read(out);
  for (const t of [ta, tb, out, ...(tbias ? [tbias] : [])]) rt.release(t);
  return { got, want: reference(c, a, b, bias, init) };
}

function tol(K: number): number {
  return 2e-6 * Math.sqrt(K + 1) * 4;
}

// Awkward shapes (no multiple of any tile) and shapes that are multiples of 4 but not of the blocks (vec4 paths).
const AWKWARD: [number, number, number][] = [
  [17, 65, 130],
  [130, 127, 3],
  [1, 3, 17],
  [65, 130, 127],
  [3, 1, 65],
  [127, 17, 1],
  [1, 1, 1],
  [65, 65, 65],
];
const ALIGNED: [number, number, number][] = [
  [68, 132, 40],
  [4, 8, 4],
  [36, 12, 132],
  [132, 20, 64],
];

/** A second runtime whose device has the 'subgroups' feature (the shared runtime does not request it), or null. */
let sgRuntime: Promise<Runtime | null> | undefined;
function subgroupRuntime(): Promise<Runtime | null> {
  sgRuntime ??= (async () => {
    const { gpu } = await nodeGpu({ quiet: true });
    const base = await acquireDevice(gpu);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter || !adapter.features.has('subgroups' as GPUFeatureName)) return null;
    const device = await adapter.requestDevice({
      requiredFeatures: ['subgroups' as GPUFeatureName],
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      },
    });
    base.device.destroy();
    return new Runtime({ ...base, adapter, device });
  })();
  return sgRuntime;
}

describe('matmul', () => {
  for (const variant of MATMUL_VARIANTS) {
    it(`${variant}: every transpose / bias / accumulate combination matches float64`, async () => {
      const rt = await gpuRuntime();
      const seed = freshSeed();
      let i = MATMUL_VARIANTS.indexOf(variant);
      // subgroup variants on this (subgroup-less) device compile their plain register block: a few combinations
      // suffice (each generated kernel costs seconds of cold LLVM compile); everything else gets all 16
      const combos = REGISTER_BLOCKS[variant]?.sg ? [0, 6, 9, 15] : [...Array(16).keys()];
      for (const combo of combos) {
        const flags = { transA: !!(combo & 1), transB: !!(combo & 2), bias: !!(combo & 4), accumulate: !!(combo & 8) };
        for (const [M, N, K] of [AWKWARD[i++ % AWKWARD.length], ALIGNED[(combo + i) % ALIGNED.length]]) {
          const c: Case = { M, N, K, ...flags };
          const s = seed + combo * 7919 + M;
          const { got, want } = await runCase(rt, variant, c, s);
          expectClose(`matmul ${variant} ${name(c)} seed=${s}`, got, want, tol(K), 1e-5);
        }
      }
      // ~1 s with Mesa's shader disk cache warm; a cold cache compiles ~30 pipelines per variant (seconds each
      // for the big register blocks on a loaded 2-core machine).
    }, 240_000);
  }

  it('subgroup variants (device with subgroups) match float64 in every combination and are deterministic', async (ctx) => {
    const rt = await subgroupRuntime();
    if (!rt || !subgroupsUsable(rt)) return ctx.skip();
    const seed = freshSeed();
    const sgVariants = MATMUL_VARIANTS.filter((v) => v.endsWith('sg'));
    expect(sgVariants.length).toBeGreaterThan(0);
    for (const [vi, variant] of sgVariants.entries()) {
      for (const combo of vi === 0 ? [...Array(16).keys()] : [0, 3, 5, 6, 9, 10, 12, 15]) {
        const flags = { transA: !!(combo & 1), transB: !!(combo & 2), bias: !!(combo & 4), accumulate: !!(combo & 8) };
        // shapes where the subgroup path applies (plain A with K % 4 == 0, or transposed A with M % 4 == 0), one with
        // a k tail, and (first variant only) awkward ones that take the fallback path
        const shapes: [number, number, number][] = [ALIGNED[(combo + vi) % ALIGNED.length], [68, 36, 43]];
        if (vi === 0) shapes.push([130, 68, 132], AWKWARD[combo % AWKWARD.length]);
        for (const [M, N, K] of shapes) {
          const c: Case = { M, N, K, ...flags };
          const s = seed + combo * 7919 + M;
          const { got, want } = await runCase(rt, variant, c, s);
          expectClose(`matmul ${variant} (subgroups) ${name(c)} seed=${s}`, got, want, tol(K), 1e-5);
          if (combo === 4 || combo === 9) {
            const again = await runCase(rt, variant, c, s);
            expect(
              again.got.every((v, i) => Object.is(v, got[i])),
              `${variant} ${name(c)} seed=${s}: runs differ`,
            ).toBe(true);
          }
        }
      }
    }
    expect(chooseVariant(rt, { M: 768, N: 384, K: 128, bias: true })).toBe('rb16x4w16sg');
  }, 400_000);

  it('texture variants (B through a texture where its rows fit one) match float64 and are deterministic', async () => {
    const seed = freshSeed();
    const texVariants = MATMUL_VARIANTS.filter((v) => REGISTER_BLOCKS[v]?.tex);
    expect(texVariants.length).toBeGreaterThan(0);
    // Plain B takes the texture when N % 64 == 0, transposed B when K % 64 == 0; M and the other size awkward, with
    // and without a k tail (plain B), and with vec4 A (K % 4 == 0: the subgroup path where the device has it) or not.
    const shapes = (transB: boolean): [number, number, number][] =>
      transB
        ? [
            [67, 20, 128],
            [5, 65, 64],
            [130, 3, 192],
          ]
        : [
            [67, 128, 36],
            [130, 64, 129],
            [3, 192, 65],
          ];
    // Only B's reads differ from the buffer blocks (tested above in every combination): plain and transposed B, with
    // A plain and transposed, bias and accumulate spread over them; all of it for the first variant on the device
    // with subgroups (where the texture blocks run), less elsewhere (each generated kernel costs seconds of compile).
    const sg = await subgroupRuntime();
    const plain = await gpuRuntime();
    for (const rt of [plain, ...(sg && subgroupsUsable(sg) ? [sg] : [])]) {
      for (const [vi, variant] of texVariants.entries()) {
        const combos = rt === plain ? (vi === 0 ? [0, 15] : []) : vi === 0 ? [0, 2, 5, 6, 9, 15] : [2, 9];
        for (const combo of combos) {
          const flags = { transA: !!(combo & 1), transB: !!(combo & 2), bias: !!(combo & 4), accumulate: !!(combo & 8) };
          for (const [M, N, K] of shapes(flags.transB).slice(0, vi === 0 ? 3 : 1)) {
            const c: Case = { M, N, K, ...flags };
            const s = seed + combo * 7919 + M + vi;
            const { got, want } = await runCase(rt, variant, c, s);
            const where = `matmul ${variant}${rt === sg ? ' (subgroups)' : ''} ${name(c)} seed=${s}`;
            expectClose(where, got, want, tol(K), 1e-5);
            if (combo === 6 || combo === 9) {
              const again = await runCase(rt, variant, c, s);
              expect(
                again.got.every((v, i) => Object.is(v, got[i])),
                `${where}: runs differ`,
              ).toBe(true);
            }
          }
        }
      }
    }
  }, 400_000);

  it('biasGrad: the fused column sums of b are bitwise biasBackward, with the product unchanged, in every variant kind', async () => {
    const seed = freshSeed();
    const sg = await subgroupRuntime();
    const plain = await gpuRuntime();
    const runs: [Runtime, string][] = [
      [plain, 'naive'],
      [plain, 'rb4x8'],
      [plain, 'rb8x8w8'],
      [plain, 'rb16x8w8sgtex'],
      ...(sg && subgroupsUsable(sg)
        ? ([
            [sg, 'rb16x8w8sgtex'],
            [sg, 'rb32x4w8sg'],
          ] as [Runtime, string][])
        : []),
    ];
    for (const [ri, [rt, variant]] of runs.entries()) {
      // dW += x^T @ dy shapes (transposed A, accumulate) with N a texture row (128) or awkward (65, scalar stores),
      // and a plain-A case with a k tail
      for (const c of [
        { M: 67, N: 128, K: 37, transA: true, transB: false, bias: false, accumulate: true },
        { M: 13, N: 65, K: 130, transA: true, transB: false, bias: false, accumulate: true },
        { M: 9, N: 132, K: 66, transA: false, transB: false, bias: true, accumulate: false },
      ]) {
        const s = seed + ri * 101 + c.N;
        const rand = rng(s);
        const init = randn(c.N, rand);
        const dbias = rt.upload(init, [c.N], 'dbias');
        const want = rt.upload(init, [c.N], 'dbias want');
        const { got, want: product } = await runCase(rt, variant, c, s, dbias);
        expectClose(`matmul ${variant} bgrad ${name(c)} seed=${s}`, got, product, tol(c.K), 1e-5);
        // the same b as runCase drew (a first, then b)
        const r2 = rng(s);
        randn(c.M * c.K, r2);
        const b = rt.upload(randn(c.K * c.N, r2), [c.K, c.N], 'b');
        biasBackward(rt, want, b, c.K, c.N);
        const [g, w] = [await rt.read(dbias), await rt.read(want)];
        expect(
          g.every((v, i) => Object.is(v, w[i])),
          `matmul ${variant} bgrad ${name(c)} seed=${s}: column sums differ from biasBackward`,
        ).toBe(true);
        for (const t of [dbias, want, b]) rt.release(t);
      }
    }
    expect(() =>
      matmul(plain, {
        M: 4,
        N: 4,
        K: 4,
        transB: true,
        a: plain.tensor([4, 4], 'a'),
        b: plain.tensor([4, 4], 'b'),
        out: plain.tensor([4, 4], 'o'),
        biasGrad: plain.tensor([4], 'g'),
      }),
    ).toThrow(/biasGrad/);
  }, 300_000);

  it('a texture variant reads B through a texture exactly where its rows fit one', async () => {
    const rt = await gpuRuntime();
    const v = 'rb16x8w8sgtex';
    const tex = (c: MatmulCase) => variantKernel(v, c, rt);
    // plain B [K, N]: rows of N floats; transposed B [N, K]: rows of K floats (256-byte rows: a multiple of 64)
    expect(tex({ M: 768, N: 512, K: 128 }).texB).toEqual({ width: 128, height: 128 });
    expect(tex({ M: 768, N: 128, K: 512, transB: true }).texB).toEqual({ width: 128, height: 128 });
    expect(tex({ M: 768, N: 65, K: 128, transB: true }).texB).toEqual({ width: 32, height: 65 });
    expect(tex({ M: 768, N: 65, K: 128 }).texB).toBeNull();
    expect(tex({ M: 768, N: 132, K: 64 }).texB).toBeNull();
    expect(tex({ M: 768, N: 128, K: 65, transB: true }).texB).toBeNull();
    expect(tex({ M: 768, N: 128, K: 64 }).kernel.bindings).toContain('texture');
    expect(tex({ M: 768, N: 65, K: 64 }).kernel.bindings).not.toContain('texture');
    // without a runtime (no device limits to check) the buffer block
    expect(variantKernel(v, { M: 768, N: 512, K: 128 }).texB).toBeNull();
  });

  it('textures are counted apart from tensors (Runtime.stats.textureBytes: outside the stage budgets)', async () => {
    const rt = await gpuRuntime();
    const [tex, buf] = [rt.stats.textureBytes, rt.stats.bytesAllocated];
    rt.texture2d(32, 65, 'counted');
    expect(rt.stats.textureBytes - tex).toBe(32 * 65 * 16);
    expect(rt.stats.bytesAllocated).toBe(buf);
  });

  it('model shapes match float64 with the default choice', async () => {
    const rt = await gpuRuntime();
    const seed = freshSeed();
    const cases: Case[] = [
      { M: 96, N: 384, K: 128, transA: false, transB: false, bias: true, accumulate: false },
      { M: 96, N: 128, K: 512, transA: false, transB: true, bias: false, accumulate: false },
      { M: 128, N: 512, K: 96, transA: true, transB: false, bias: false, accumulate: true },
      { M: 96, N: 65, K: 128, transA: false, transB: true, bias: false, accumulate: false },
      { M: 96, N: 128, K: 65, transA: false, transB: false, bias: false, accumulate: false },
      { M: 65, N: 128, K: 96, transA: true, transB: false, bias: false, accumulate: true },
    ];
    for (const c of cases) {
      const { got, want } = await runCase(rt, null, c, seed + c.N);
      expectClose(`matmul default(${chooseVariant(rt, c)}) ${name(c)} seed=${seed + c.N}`, got, want, tol(c.K), 1e-5);
    }
  });

  it('is bitwise deterministic per variant', async () => {
    const rt = await gpuRuntime();
    const seed = freshSeed();
    for (const variant of MATMUL_VARIANTS) {
      for (const c of [
        { M: 65, N: 130, K: 127, transA: false, transB: true, bias: true, accumulate: false },
        { M: 68, N: 132, K: 200, transA: true, transB: false, bias: false, accumulate: true },
      ]) {
        const r1 = await runCase(rt, variant, c, seed);
        const r2 = await runCase(rt, variant, c, seed);
        const same = r1.got.every((v, i) => Object.is(v, r2.got[i]));
        expect(same, `${variant} ${name(c)} seed=${seed}: two runs differ`).toBe(true);
      }
    }
  });

  it('biasBackward accumulates column sums', async () => {
    const rt = await gpuRuntime();
    const seed = freshSeed();
    const rand = rng(seed);
    for (const [M, N] of [
      [1, 1],
      [130, 65],
      [768, 128],
      [3, 513],
    ]) {
      const dout = randn(M * N, rand);
      const init = randn(N, rand);
      const td = rt.upload(dout, [M, N], 'dout');
      const tb = rt.upload(init, [N], 'dbias');
      biasBackward(rt, tb, td, M, N);
      const got = await rt.read(tb);
      const want = Array.from(init, (v, n) => {
        let s = 0;
        for (let m = 0; m < M; m++) s += dout[m * N + n];
        return v + s;
      });
      expectClose(`bias_backward ${M}x${N} seed=${seed}`, got, want, tol(M), 1e-5);
      // determinism: run again from the same start
      rt.write(tb, init);
      biasBackward(rt, tb, td, M, N);
      const again = await rt.read(tb);
      expect(
        again.every((v, i) => Object.is(v, got[i])),
        `bias_backward ${M}x${N} seed=${seed}: runs differ`,
      ).toBe(true);
    }
  });

  it('tuneMatmul picks a variant per shape and matmul uses it; the table round-trips through JSON', async () => {
    const rt = await gpuRuntime();
    const shapes = [
      { M: 40, N: 36, K: 24, bias: true },
      { M: 33, N: 17, K: 9, transA: true, accumulate: true },
    ];
    const lines: string[] = [];
    await tuneMatmul(rt, shapes, { reps: 2, log: (s) => lines.push(s) });
    const table = matmulChoices(rt);
    for (const s of shapes) {
      const key = `${s.M}x${s.N}x${s.K}`;
      const row = table.find((r) => r.shape.startsWith(key));
      expect(row, `no tuner row for ${key}`).toBeDefined();
      expect(MATMUL_VARIANTS).toContain(row!.variant);
      expect(Object.keys(row!.timingsMs).length).toBeGreaterThan(1);
      expect(chooseVariant(rt, s)).toBe(row!.variant);
    }
    expect(lines.length).toBeGreaterThan(0);
    // idempotent: a second call times nothing new
    const before = rt.stats.launches;
    await tuneMatmul(rt, shapes, { reps: 2 });
    expect(rt.stats.launches).toBe(before);
    // force a choice through import and check matmul follows it (and still computes the right thing)
    const json = exportTuning(rt);
    const parsed = JSON.parse(json);
    const forced = { ...parsed, choices: parsed.choices.map((c: { shape: string }) => ({ ...c, variant: 'naive' })) };
    importTuning(rt, JSON.stringify(forced));
    expect(chooseVariant(rt, shapes[0])).toBe('naive');
    const c: Case = { M: 40, N: 36, K: 24, transA: false, transB: false, bias: true, accumulate: false };
    const { got, want } = await runCase(rt, null, c, 7);
    expectClose('matmul after importTuning seed=7', got, want, tol(24), 1e-5);
    importTuning(rt, json);
    expect(chooseVariant(rt, shapes[0])).toBe(table[0].variant);
  });

  it('names the op when sizes are wrong', async () => {
    const rt = await gpuRuntime();
    const a = rt.tensor([10, 4], 'small');
    const b = rt.tensor([4, 8], 'b');
    const out = rt.tensor([10, 8], 'out');
    expect(() => matmul(rt, { out, a, b, M: 11, N: 8, K: 4 })).toThrow(/matmul: a \[M,K\] small holds 40 elements, needs 44/);
    expect(() => matmul(rt, { out, a, b, M: 10, N: 8, K: 5 })).toThrow(/matmul: .* holds/);
    expect(() => matmul(rt, { out, a, b, bias: rt.tensor([7], 'bias'), M: 10, N: 8, K: 4 })).toThrow(/matmul: bias \[N\] bias holds 7/);
    expect(() => biasBackward(rt, rt.tensor([7], 'db'), out, 10, 8)).toThrow(/bias_backward: dbias/);
  });
});
