import { describe, expect, it } from 'vitest';
import { layernormBackward, layernormForward, layernormScratchSize } from '../../src/gpu/ops/layernorm';
import type { Runtime } from '../../src/gpu/runtime';
import type { Tensor } from '../../src/gpu/tensor';
import { expectClose, freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';

const EPS = 1e-5;

function forwardRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, N: number, C: number) {
  const out = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[n * C + c];
    const m = s / C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[n * C + c] - m) ** 2;
    const r = 1 / Math.sqrt(v / C + EPS);
    for (let c = 0; c < C; c++) out[n * C + c] = (x[n * C + c] - m) * r * w[c] + b[c];
    mean[n] = m;
    rstd[n] = r;
  }
  return { out, mean, rstd };
}

/** Gradients (not accumulated) of sum(out * dout). */
function backwardRef(x: ArrayLike<number>, w: ArrayLike<number>, dout: ArrayLike<number>, N: number, C: number) {
  const { mean, rstd } = forwardRef(x, w, new Float64Array(C), N, C);
  const dinp = new Float64Array(N * C);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const m = mean[n];
    const r = rstd[n];
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < C; c++) {
      const g = dout[n * C + c] * w[c];
      const xh = (x[n * C + c] - m) * r;
      sg += g;
      sgx += g * xh;
      dw[c] += dout[n * C + c] * xh;
      db[c] += dout[n * C + c];
    }
    for (let c = 0; c < C; c++) {
      const g = dout[n * C + c] * w[c];
      const xh = (x[n * C + c] - m) * r;
      dinp[n * C + c] = r * (g - sg / C - (xh * sgx) / C);
    }
  }
  return { dinp, dw, db };
}

const cases: [number, number][] = [
  [1, 1],
  [7, 3],
  [129, 5],
  [7, 17],
  [1, 384],
  [33, 4],
  [129, 130],
  [768, 128],
  [100, 384],
  [768, 383],
];

async function runBoth(
  rt: Runtime,
  N: number,
  C: number,
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  dy: Float32Array,
  dinp0: Float32Array,
  dw0: Float32Array,
  db0: Float32Array,
  opts: { views?: boolean; scratch?: boolean } = {},
) {
  const inp = rt.upload(x, [N, C], 'inp');
  const weight = rt.upload(w, [C], 'weight');
  const bias = rt.upload(b, [C], 'bias');
  const dout = rt.upload(dy, [N, C], 'dout');
  const out = rt.tensor([N, C], 'out');
  let mean: Tensor;
  let rstd: Tensor;
  let acts: Tensor | undefined;
  if (opts.views) {
    // mean and rstd as views of one activation buffer (both written by the same dispatch). Offsets are non-zero:
    // the runtime binds a view at element offset 0 as its whole parent buffer (see the report on runtime.ts).
    const a = rt.viewAlignment;
    const stride = Math.ceil(N / a) * a;
    acts = rt.tensor([a + 2 * stride], 'acts');
    poison(rt, acts);
    mean = rt.view(acts, a, [N], 'mean');
    rstd = rt.view(acts, a + stride, [N], 'rstd');
  } else {
    mean = rt.tensor([N], 'mean');
    rstd = rt.tensor([N], 'rstd');
  }
  poison(rt, out, mean, rstd);
  layernormForward(rt, { out, mean, rstd, inp, weight, bias }, { N, C });
  const dinp = rt.upload(dinp0, [N, C], 'dinp');
  let dweight: Tensor;
  let dbias: Tensor;
  let grads: Tensor | undefined;
  if (opts.views) {
    // dweight and dbias as adjacent views of one flat gradient buffer, as the model lays them out.
    const a = rt.viewAlignment;
    const off = Math.ceil(C / a) * a;
    grads = rt.tensor([off + Math.ceil(C / a) * a], 'grads');
    poison(rt, grads);
    rt.write(grads, dw0, 0);
    rt.write(grads, db0, off);
    dweight = rt.view(grads, 0, [C], 'dweight');
    dbias = rt.view(grads, off, [C], 'dbias');
  } else {
    dweight = rt.upload(dw0, [C], 'dweight');
    dbias = rt.upload(db0, [C], 'dbias');
  }
  let scratch: Tensor | undefined;
  if (opts.scratch) {
    scratch = rt.tensor([layernormScratchSize({ N, C })], 'scratch');
    poison(rt, scratch);
  }
  layernormBackward(rt, { dinp, dweight, dbias, dout, inp, weight, mean, rstd, scratch }, { N, C });
  const res = {
    out: await rt.read(out),
    mean: await rt.read(mean),
    rstd: await rt.read(rstd),
    dinp: await rt.read(dinp),
    dw: await rt.read(dweight),
    db: await rt.read(dbias),
    grads: grads ? await rt.read(grads) : undefined,
  };
  for (const t of [inp, weight, bias, dout, out, dinp]) rt.release(t);
  if (acts) rt.release(acts);
  else for (const t of [mean, rstd]) rt.release(t);
  if (grads) rt.release(grads);
  else for (const t of [dweight, dbias]) rt.release(t);
  if (scratch) rt.release(scratch);
  return res;
}

function randomInputs(N: number, C: number, rand: () => number) {
  const x = randn(N * C, rand, 2);
  for (let n = 0; n < N; n++) {
    const shift = 4 * (rand() - 0.5); // rows with non-zero means
    for (let c = 0; c < C; c++) x[n * C + c] += shift;
  }
  const w = randn(C, rand);
  for (let c = 0; c < C; c++) w[c] += 1;
  return { x, w, b: randn(C, rand), dy: randn(N * C, rand), dinp0: randn(N * C, rand), dw0: randn(C, rand), db0: randn(C, rand) };
}

describe('layernorm', () => {
  for (const [N, C] of cases) {
    it(`forward and backward match float64 at N=${N} C=${C}`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const rt = await gpuRuntime();
      const { x, w, b, dy, dinp0, dw0, db0 } = randomInputs(N, C, rand);
      const got = await runBoth(rt, N, C, x, w, b, dy, dinp0, dw0, db0, { scratch: N % 2 === 1 });
      const what = `N=${N} C=${C} seed=${seed}`;
      const f = forwardRef(x, w, b, N, C);
      expectClose(`layernorm out ${what}`, got.out, f.out, 2e-5, 2e-5);
      expectClose(`layernorm mean ${what}`, got.mean, f.mean, 1e-5, 1e-5);
      expectClose(`layernorm rstd ${what}`, got.rstd, f.rstd, 1e-5, 1e-5);
      const g = backwardRef(x, w, dy, N, C);
      expectClose(
        `layernorm dinp ${what}`,
        got.dinp,
        Array.from(g.dinp, (v, i) => v + dinp0[i]),
        5e-5,
        5e-5,
      );
      expectClose(
        `layernorm dweight ${what}`,
        got.dw,
        Array.from(g.dw, (v, i) => v + dw0[i]),
        1e-4,
        2e-5,
      );
      expectClose(
        `layernorm dbias ${what}`,
        got.db,
        Array.from(g.db, (v, i) => v + db0[i]),
        1e-4,
        2e-5,
      );
    });
  }

  it('float64 reference backward matches finite differences', () => {
    const seed = freshSeed();
    const rand = rng(seed);
    for (const [N, C] of [
      [1, 1],
      [2, 3],
      [3, 5],
    ]) {
      const x = Float64Array.from(randn(N * C, rand, 2));
      const w = Float64Array.from(randn(C, rand));
      const b = Float64Array.from(randn(C, rand));
      const dy = Float64Array.from(randn(N * C, rand));
      const loss = () => forwardRef(x, w, b, N, C).out.reduce((s, v, i) => s + v * dy[i], 0);
      const g = backwardRef(x, w, dy, N, C);
      const h = 1e-6;
      const check = (name: string, arr: Float64Array, grad: Float64Array) => {
        for (let i = 0; i < arr.length; i++) {
          const keep = arr[i];
          arr[i] = keep + h;
          const lp = loss();
          arr[i] = keep - h;
          const lm = loss();
          arr[i] = keep;
          const fd = (lp - lm) / (2 * h);
          if (Math.abs(fd - grad[i]) > 1e-5 * (1 + Math.abs(fd))) throw new Error(`d${name}[${i}] fd ${fd} vs ${grad[i]} N=${N} C=${C} seed=${seed}`);
        }
      };
      check('inp', x, g.dinp);
      check('weight', w, g.dw);
      check('bias', b, g.db);
    }
  });

  it('works with dweight/dbias (and mean/rstd) as views of one buffer, and is bitwise deterministic', async () => {
    const seed = freshSeed();
    const rt = await gpuRuntime();
    for (const [N, C] of [
      [768, 128],
      [129, 130],
    ]) {
      const rand = rng(seed + C);
      const { x, w, b, dy, dinp0, dw0, db0 } = randomInputs(N, C, rand);
      const r1 = await runBoth(rt, N, C, x, w, b, dy, dinp0, dw0, db0, { views: true });
      const r2 = await runBoth(rt, N, C, x, w, b, dy, dinp0, dw0, db0, { views: true, scratch: true });
      // Same shapes without views: also bitwise equal (the result depends only on shapes and values).
      const r3 = await runBoth(rt, N, C, x, w, b, dy, dinp0, dw0, db0);
      const what = `N=${N} C=${C} seed=${seed}`;
      for (const key of ['out', 'mean', 'rstd', 'dinp', 'dw', 'db', 'grads'] as const) {
        expect(Buffer.from(r1[key]!.buffer).equals(Buffer.from(r2[key]!.buffer)), `layernorm ${key} not bitwise equal, ${what}`).toBe(true);
        if (key !== 'grads')
          expect(Buffer.from(r1[key].buffer).equals(Buffer.from(r3[key].buffer)), `layernorm ${key} views vs plain, ${what}`).toBe(true);
      }
      const g = backwardRef(x, w, dy, N, C);
      expectClose(
        `layernorm dweight view ${what}`,
        r1.dw,
        Array.from(g.dw, (v, i) => v + dw0[i]),
        1e-4,
        2e-5,
      );
      expectClose(
        `layernorm dbias view ${what}`,
        r1.db,
        Array.from(g.db, (v, i) => v + db0[i]),
        1e-4,
        2e-5,
      );
    }
  });

  it('names the op when shapes are wrong', async () => {
    const rt = await gpuRuntime();
    const N = 5,
      C = 8;
    const big = rt.tensor([N, C], 'nc');
    const vecC = rt.tensor([C], 'c');
    const vecN = rt.tensor([N], 'n');
    const small = rt.tensor([3], 'small');
    const fa = { out: big, mean: vecN, rstd: vecN, inp: big, weight: vecC, bias: vecC };
    expect(() => layernormForward(rt, { ...fa, inp: small }, { N, C })).toThrow(/layernorm_forward: inp small holds 3 elements, needs 40/);
    expect(() => layernormForward(rt, { ...fa, bias: small }, { N, C })).toThrow(/layernorm_forward: bias small/);
    expect(() => layernormForward(rt, { ...fa, rstd: small }, { N, C })).toThrow(/layernorm_forward: rstd small/);
    const ba = { dinp: big, dweight: vecC, dbias: vecC, dout: big, inp: big, weight: vecC, mean: vecN, rstd: vecN };
    expect(() => layernormBackward(rt, { ...ba, dinp: small }, { N, C })).toThrow(/layernorm_backward: dinp small/);
    expect(() => layernormBackward(rt, { ...ba, dweight: small }, { N, C })).toThrow(/layernorm_backward: dweight small/);
    expect(() => layernormBackward(rt, { ...ba, mean: small }, { N, C })).toThrow(/layernorm_backward: mean small/);
    expect(() => layernormBackward(rt, { ...ba, scratch: small }, { N, C })).toThrow(/layernorm_backward: scratch small/);
    expect(() => layernormForward(rt, fa, { N: 0, C })).toThrow(/layernorm_forward: N = 0/);
  });
});
