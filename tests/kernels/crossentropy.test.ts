import { describe, expect, it } from 'vitest';
import { crossEntropyBackward, crossEntropyForward, crossEntropyThreads, lossReduce } from '../../src/gpu/ops/crossentropy';
import type { Runtime } from '../../src/gpu/runtime';
import type { Tensor } from '../../src/gpu/tensor';
import { expectClose, freshSeed, gpuRuntime, poison, randInt, randn, rng } from '../support/gpu';

/** float64 reference: probs, per-row losses (log-sum-exp form). */
function refForward(logits: ArrayLike<number>, targets: ArrayLike<number>, N: number, V: number): { probs: Float64Array; losses: Float64Array } {
  const probs = new Float64Array(N * V);
  const losses = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let mx = -Infinity;
    for (let c = 0; c < V; c++) mx = Math.max(mx, logits[n * V + c]);
    let s = 0;
    for (let c = 0; c < V; c++) s += Math.exp(logits[n * V + c] - mx);
    for (let c = 0; c < V; c++) probs[n * V + c] = Math.exp(logits[n * V + c] - mx) / s;
    const t = targets[n];
    losses[n] = t < V ? Math.log(s) + mx - logits[n * V + t] : NaN;
  }
  return { probs, losses };
}

function refBackward(probs: ArrayLike<number>, targets: ArrayLike<number>, N: number, V: number, scale: number): Float64Array {
  const out = new Float64Array(N * V);
  for (let n = 0; n < N; n++) for (let c = 0; c < V; c++) out[n * V + c] = (probs[n * V + c] - (c === targets[n] ? 1 : 0)) * scale;
  return out;
}

interface Run {
  probs: Float32Array;
  losses: Float32Array;
  loss: Float32Array;
  dlogits: Float32Array;
}

async function runAll(rt: Runtime, logits: Tensor, targets: Tensor, N: number, V: number, scale: number, threads?: [number, number]): Promise<Run> {
  const probs = rt.tensor([N, V], 'probs');
  const losses = rt.tensor([N], 'losses');
  const loss = rt.tensor([1], 'loss');
  const dlogits = rt.tensor([N, V], 'dlogits');
  poison(rt, probs, losses, loss, dlogits);
  crossEntropyForward(rt, { losses, probs, logits, targets }, { N, V, threads: threads?.[0] });
  lossReduce(rt, { loss, losses }, { N, scale });
  crossEntropyBackward(rt, { dlogits, probs, targets }, { N, V, scale, threads: threads?.[1] });
  const out = { probs: await rt.read(probs), losses: await rt.read(losses), loss: await rt.read(loss), dlogits: await rt.read(dlogits) };
  for (const t of [probs, losses, loss, dlogits]) rt.release(t);
  return out;
}

function sameBits(what: string, a: Float32Array, b: Float32Array): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) throw new Error(`${what}: run 1 and run 2 differ at element ${i} (${a[i]} vs ${b[i]})`);
  }
}

describe('crossentropy', () => {
  const cases: [number, number][] = [
    [1, 1],
    [7, 1],
    [1, 2],
    [129, 2],
    [7, 65],
    [129, 65],
    [768, 65],
    [1, 1001],
    [129, 1001],
    [7, 4099],
  ];
  // [N, V, threads] (undefined: the adapter's default from crossEntropyThreads)
  const variants: [number, number, [number, number] | undefined][] = [
    ...cases.map(([N, V]) => [N, V, undefined] as [number, number, undefined]),
    [129, 65, [1, 1]],
    [129, 65, [2, 3]],
    [129, 65, [32, 64]],
    [129, 1001, [4, 7]],
    [129, 1001, [64, 256]],
    [7, 4099, [256, 100]],
  ];
  for (const [N, V, threads] of variants) {
    it(`forward, mean and backward match float64 at N=${N} V=${V} threads=${threads ?? 'default'}`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const rt = await gpuRuntime();
      if (!threads) {
        const t = crossEntropyThreads(V, rt.handle.report.key);
        expect(t.forward & (t.forward - 1)).toBe(0);
      }
      const logits = randn(N * V, rand, 3);
      const targets = randInt(N, V, rand);
      const tl = rt.upload(logits, [N, V], 'logits');
      const tt = rt.upload(targets, [N], 'targets');
      const scale = 1 / N;
      const got = await runAll(rt, tl, tt, N, V, scale, threads);
      const ref = refForward(logits, targets, N, V);
      const tag = `N=${N} V=${V} threads=${threads ?? 'default'} seed=${seed}`;
      expectClose(`probs ${tag}`, got.probs, ref.probs, 1e-7, 2e-5);
      expectClose(`losses ${tag}`, got.losses, ref.losses, 2e-6, 2e-5);
      const mean = ref.losses.reduce((s, x) => s + x, 0) * scale;
      expectClose(`mean loss ${tag}`, got.loss, [mean], 1e-6, 2e-5);
      expectClose(`dlogits ${tag}`, got.dlogits, refBackward(ref.probs, targets, N, V, scale), 1e-7 * scale, 2e-5);
      // determinism: a second run is bitwise equal
      const again = await runAll(rt, tl, tt, N, V, scale, threads);
      sameBits(`probs ${tag}`, got.probs, again.probs);
      sameBits(`losses ${tag}`, got.losses, again.losses);
      sameBits(`loss ${tag}`, got.loss, again.loss);
      sameBits(`dlogits ${tag}`, got.dlogits, again.dlogits);
      rt.release(tl);
      rt.release(tt);
    });
  }

  it('large logits (+-80) neither overflow nor lose the target loss', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const N = 129;
    const V = 65;
    const logits = new Float32Array(N * V);
    for (let i = 0; i < logits.length; i++) logits[i] = rand() < 0.5 ? -80 + rand() : 80 - rand();
    const targets = randInt(N, V, rand);
    // make some targets sit at -80 while the row max is +80: p(target) = e^-160 underflows f32, the loss must not
    for (let n = 0; n < N; n += 3) logits[n * V + targets[n]] = -80;
    logits[0] = 80; // row 0 has a +80 entry
    const tl = rt.upload(logits, [N, V], 'logits');
    const tt = rt.upload(targets, [N], 'targets');
    const got = await runAll(rt, tl, tt, N, V, 1 / N);
    const ref = refForward(logits, targets, N, V);
    const tag = `seed=${seed}`;
    expectClose(`probs ${tag}`, got.probs, ref.probs, 1e-7, 2e-5);
    expectClose(`losses ${tag}`, got.losses, ref.losses, 1e-5, 2e-6);
    expect(ref.losses[0]).toBeGreaterThan(150);
    expectClose(`mean loss ${tag}`, got.loss, [ref.losses.reduce((s, x) => s + x, 0) / N], 1e-5, 1e-5);
    expectClose(`dlogits ${tag}`, got.dlogits, refBackward(ref.probs, targets, N, V, 1 / N), 1e-9, 2e-5);
  });

  it('backward matches central finite differences of the float64 forward', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const N = 3;
    const V = 5;
    const scale = 0.37; // dloss / N_total with an upstream gradient that is not 1
    const logits = randn(N * V, rand, 2);
    const targets = randInt(N, V, rand);
    const tl = rt.upload(logits, [N, V], 'logits');
    const tt = rt.upload(targets, [N], 'targets');
    const got = await runAll(rt, tl, tt, N, V, scale);
    const x = Float64Array.from(logits);
    const L = (xs: Float64Array) => refForward(xs, targets, N, V).losses.reduce((s, v) => s + v, 0) * scale;
    const h = 1e-5;
    const fd = new Float64Array(N * V);
    for (let i = 0; i < N * V; i++) {
      const xp = x.slice();
      const xm = x.slice();
      xp[i] += h;
      xm[i] -= h;
      fd[i] = (L(xp) - L(xm)) / (2 * h);
    }
    expectClose(`dlogits vs finite differences seed=${seed}`, got.dlogits, fd, 1e-6, 1e-5);
  });

  it('an out-of-range target gives a NaN loss and NaN gradient row, and touches nothing else', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const N = 7;
    const V = 65;
    const logits = randn(N * V, rand);
    const targets = randInt(N, V, rand);
    targets[2] = V;
    targets[5] = 0xffffffff;
    const tl = rt.upload(logits, [N, V], 'logits');
    const tt = rt.upload(targets, [N], 'targets');
    // losses and dlogits are views with live guard data after them: nothing past N / N*V may change
    const lossesFlat = rt.tensor([512], 'losses flat');
    const dFlat = rt.tensor([1024], 'dlogits flat');
    rt.fill(lossesFlat, 7);
    rt.fill(dFlat, 7);
    const losses = rt.view(lossesFlat, 64, [N], 'losses');
    const dlogits = rt.view(dFlat, 64, [N, V], 'dlogits');
    const probs = rt.tensor([N, V], 'probs');
    crossEntropyForward(rt, { losses, probs, logits: tl, targets: tt }, { N, V });
    crossEntropyBackward(rt, { dlogits, probs, targets: tt }, { N, V, scale: 1 / N });
    const lf = await rt.read(lossesFlat);
    const df = await rt.read(dFlat);
    const ref = refForward(logits, targets, N, V);
    const tag = `seed=${seed}`;
    for (let n = 0; n < N; n++) {
      const bad = n === 2 || n === 5;
      expect(Number.isNaN(lf[64 + n]), `loss row ${n} ${tag}`).toBe(bad);
      if (!bad) expect(Math.abs(lf[64 + n] - ref.losses[n])).toBeLessThan(1e-5);
      for (let c = 0; c < V; c++) expect(Number.isNaN(df[64 + n * V + c]), `dlogits ${n},${c} ${tag}`).toBe(bad);
    }
    for (let i = 0; i < lf.length; i++) if (i < 64 || i >= 64 + N) expect(lf[i], `losses guard ${i}`).toBe(7);
    for (let i = 0; i < df.length; i++) if (i < 64 || i >= 64 + N * V) expect(df[i], `dlogits guard ${i}`).toBe(7);
    // probs stay a valid softmax for every row
    const pr = await rt.read(probs);
    expectClose(`probs ${tag}`, pr, ref.probs, 1e-7, 2e-5);
  });

  it('mean reduction over many rows (N=70001) is close and deterministic', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const N = 70_001;
    const vals = new Float32Array(N);
    for (let i = 0; i < N; i++) vals[i] = rand() * 10;
    const losses = rt.upload(vals, [N], 'losses');
    const loss = rt.tensor([1], 'loss');
    poison(rt, loss);
    lossReduce(rt, { loss, losses }, { N, scale: 1 / N });
    const a = await rt.read(loss);
    lossReduce(rt, { loss, losses }, { N, scale: 1 / N });
    const b = await rt.read(loss);
    const ref = vals.reduce((s, x) => s + x, 0) / N;
    expectClose(`loss seed=${seed}`, a, [ref], 0, 1e-5);
    sameBits(`loss seed=${seed}`, a, b);
    lossReduce(rt, { loss, losses }, { N: 0, scale: 1 });
    expect(Array.from(await rt.read(loss))).toEqual([0]);
  });

  it('names the op when sizes are wrong or buffers alias', async () => {
    const rt = await gpuRuntime();
    const logits = rt.tensor([4, 10], 'logits');
    const probs = rt.tensor([4, 10], 'probs');
    const small = rt.tensor([3, 10], 'small');
    const losses = rt.tensor([4], 'losses');
    const targets = rt.tensor([4], 'targets', 'u32');
    const ftargets = rt.tensor([4], 'ftargets');
    expect(() => crossEntropyForward(rt, { losses, probs: small, logits, targets }, { N: 4, V: 10 })).toThrow(
      /crossentropy_forward: probs small holds 30 elements, needs 40/,
    );
    expect(() => crossEntropyForward(rt, { losses, probs, logits: small, targets }, { N: 4, V: 10 })).toThrow(/crossentropy_forward: logits small/);
    expect(() => crossEntropyForward(rt, { losses: small, probs, logits, targets: rt.tensor([2], 't2', 'u32') }, { N: 4, V: 10 })).toThrow(
      /crossentropy_forward: targets t2 holds 2 elements, needs 4/,
    );
    expect(() => crossEntropyForward(rt, { losses, probs, logits, targets: ftargets }, { N: 4, V: 10 })).toThrow(
      /crossentropy_forward: targets ftargets must be u32/,
    );
    expect(() => crossEntropyForward(rt, { losses, probs, logits, targets }, { N: 4, V: 0 })).toThrow(/crossentropy_forward: V/);
    expect(() => lossReduce(rt, { loss: losses, losses: rt.tensor([2], 'l2') }, { N: 4, scale: 1 })).toThrow(
      /loss_reduce: losses l2 holds 2 elements, needs 4/,
    );
    expect(() => lossReduce(rt, { loss: losses, losses }, { N: 4, scale: 1 })).toThrow(/loss_reduce: .*share a buffer/);
    expect(() => crossEntropyBackward(rt, { dlogits: small, probs, targets }, { N: 4, V: 10, scale: 1 })).toThrow(
      /crossentropy_backward: dlogits small holds 30 elements, needs 40/,
    );
    expect(() => crossEntropyBackward(rt, { dlogits: probs, probs, targets }, { N: 4, V: 10, scale: 1 })).toThrow(
      /crossentropy_backward: .*share a buffer/,
    );
    expect(() => crossEntropyBackward(rt, { dlogits: logits, probs, targets }, { N: 4, V: 10, scale: NaN })).toThrow(/crossentropy_backward: scale/);
    expect(() => crossEntropyForward(rt, { losses, probs, logits, targets }, { N: 4, V: 10, threads: 48 })).toThrow(/crossentropy_forward: threads/);
    expect(() => crossEntropyBackward(rt, { dlogits: logits, probs, targets }, { N: 4, V: 10, scale: 1, threads: 512 })).toThrow(
      /crossentropy_backward: threads/,
    );
    await rt.flush(); // nothing was launched, nothing failed
  });
});
