import { describe, expect, it } from 'vitest';
import { geluBackward, geluForward } from '../../src/gpu/ops/gelu';
import { expectClose, freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';

const S = Math.sqrt(2 / Math.PI);
const K = 0.044715;

function geluRef(x: number): number {
  return 0.5 * x * (1 + Math.tanh(S * (x + K * x * x * x)));
}
function geluGradRef(x: number): number {
  const t = Math.tanh(S * (x + K * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * S * (1 + 3 * K * x * x);
}

async function run(n: number, x: Float32Array, dy: Float32Array) {
  const rt = await gpuRuntime();
  const inp = rt.upload(x, [n], 'inp');
  const dout = rt.upload(dy, [n], 'dout');
  const out = rt.tensor([n], 'out');
  const dinp = rt.tensor([n], 'dinp');
  poison(rt, out, dinp);
  geluForward(rt, out, inp);
  geluBackward(rt, dinp, inp, dout);
  const [y, dx] = [await rt.read(out), await rt.read(dinp)];
  for (const t of [inp, dout, out, dinp]) rt.release(t);
  return { y, dx };
}

describe('gelu', () => {
  for (const n of [1, 3, 5, 17, 256, 257, 1000, 70_001, 70_004]) {
    it(`forward and backward match float64 at n=${n}`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const x = randn(n, rand, 3);
      const dy = randn(n, rand);
      const { y, dx } = await run(n, x, dy);
      expectClose(`gelu fwd n=${n} seed=${seed}`, y, Array.from(x, geluRef), 2e-6, 2e-6);
      expectClose(
        `gelu bwd n=${n} seed=${seed}`,
        dx,
        Array.from(x, (v, i) => dy[i] * geluGradRef(v)),
        3e-6,
        1e-5,
      );
    });
  }

  for (const n of [71, 72]) {
    it(`is finite and correct at extreme inputs (n=${n}, ${n % 4 === 0 ? 'vec4' : 'scalar'})`, async () => {
      const special = [
        0, -0, 1e-30, -1e-30, 1e-3, -1e-3, 3, -3, 5, -5, 8, -8, 10, -10, 20, -20, 30, -30, 40, -40, 50, -50, 88, -88, 100, -100, 1e4, -1e4, 1e10,
        -1e10, 1e20, -1e20, 3e38, -3e38,
      ];
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = i < special.length ? special[i] : -50 + (100 * (i - special.length)) / (n - special.length);
      const dy = new Float32Array(n).fill(1);
      const { y, dx } = await run(n, x, dy);
      for (let i = 0; i < n; i++) {
        if (!Number.isFinite(y[i]) || !Number.isFinite(dx[i])) throw new Error(`gelu(${x[i]}) = ${y[i]}, gelu' = ${dx[i]}`);
      }
      // Reference in float64 (tanh saturates exactly where float64 allows; at |x| >= ~10 gelu is x or 0 to f32).
      expectClose(
        `gelu fwd extremes`,
        y,
        Array.from(x, (v) => (Math.abs(v) > 1e6 ? Math.max(v, 0) : geluRef(v))),
        2e-6,
        2e-6,
      );
      expectClose(
        `gelu bwd extremes`,
        dx,
        Array.from(x, (v) => (Math.abs(v) > 1e6 ? (v > 0 ? 1 : 0) : geluGradRef(v))),
        3e-6,
        1e-5,
      );
    });
  }

  it('float64 reference gradient matches finite differences', () => {
    for (const x of [-6, -3, -1.5, -0.3, 0, 0.2, 1, 2.5, 7]) {
      const h = 1e-6;
      const fd = (geluRef(x + h) - geluRef(x - h)) / (2 * h);
      expect(Math.abs(fd - geluGradRef(x))).toBeLessThan(1e-7);
    }
  });

  it('is bitwise deterministic', async () => {
    const seed = freshSeed();
    for (const n of [4099, 4100]) {
      const rand = rng(seed);
      const x = randn(n, rand, 4);
      const dy = randn(n, rand);
      const a = await run(n, x, dy);
      const b = await run(n, x, dy);
      expect(Buffer.from(a.y.buffer).equals(Buffer.from(b.y.buffer)), `gelu fwd n=${n} seed=${seed}`).toBe(true);
      expect(Buffer.from(a.dx.buffer).equals(Buffer.from(b.dx.buffer)), `gelu bwd n=${n} seed=${seed}`).toBe(true);
    }
  });

  it('works on views into a larger buffer', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const n = 130;
    const off = rt.viewAlignment * 2;
    const x = randn(n, rand, 2);
    const big = rt.tensor([off + n + 64], 'big');
    poison(rt, big);
    rt.write(big, x, off);
    const out = rt.tensor([n], 'out');
    poison(rt, out);
    geluForward(rt, out, rt.view(big, off, [n], 'x view'));
    expectClose(`gelu view seed=${seed}`, await rt.read(out), Array.from(x, geluRef), 2e-6, 2e-6);
  });

  it('names the op when shapes are wrong', async () => {
    const rt = await gpuRuntime();
    const small = rt.tensor([10], 'small');
    const big = rt.tensor([20], 'big');
    expect(() => geluForward(rt, big, small)).toThrow(/gelu_forward: inp small holds 10 elements, needs 20/);
    expect(() => geluBackward(rt, big, big, small)).toThrow(/gelu_backward: dout small holds 10 elements, needs 20/);
    expect(() => geluBackward(rt, big, small, big)).toThrow(/gelu_backward: inp small/);
  });
});
