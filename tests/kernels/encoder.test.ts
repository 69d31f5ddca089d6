import { describe, expect, it } from 'vitest';
import { encoderBackward, encoderForward, TokenIndex } from '../../src/gpu/ops/encoder';
import { expectClose, freshSeed, gpuRuntime, poison, randInt, randn, rng } from '../support/gpu';

interface Case {
  B: number;
  T: number;
  C: number;
  V: number;
  maxT: number;
  tokens?: 'random' | 'same' | 'few';
}

function makeTokens(c: Case, rand: () => number): Uint32Array {
  const n = c.B * c.T;
  if (c.tokens === 'same') return new Uint32Array(n).fill(c.V - 1);
  if (c.tokens === 'few') return Uint32Array.from(randInt(n, 3, rand), (x) => [0, Math.floor(c.V / 2), c.V - 1][x]);
  return randInt(n, c.V, rand);
}

function forwardRef(c: Case, tok: Uint32Array, wte: Float32Array, wpe: Float32Array): Float64Array {
  const { B, T, C } = c;
  const out = new Float64Array(B * T * C);
  for (let p = 0; p < B * T; p++) {
    const t = p % T;
    for (let j = 0; j < C; j++) out[p * C + j] = wte[tok[p] * C + j] + wpe[t * C + j];
  }
  return out;
}

function backwardRef(c: Case, tok: Uint32Array, dout: Float32Array, dwte0: Float32Array, dwpe0: Float32Array) {
  const { B, T, C } = c;
  const dwte = Float64Array.from(dwte0);
  const dwpe = Float64Array.from(dwpe0);
  for (let p = 0; p < B * T; p++) {
    const t = p % T;
    for (let j = 0; j < C; j++) {
      dwte[tok[p] * C + j] += dout[p * C + j];
      dwpe[t * C + j] += dout[p * C + j];
    }
  }
  return { dwte, dwpe };
}

const cases: Case[] = [
  { B: 1, T: 1, C: 1, V: 1, maxT: 1 },
  { B: 2, T: 3, C: 5, V: 7, maxT: 4 },
  { B: 3, T: 7, C: 3, V: 65, maxT: 9 },
  { B: 1, T: 129, C: 17, V: 65, maxT: 129 },
  { B: 12, T: 64, C: 128, V: 65, maxT: 64 },
  { B: 12, T: 64, C: 128, V: 65, maxT: 64, tokens: 'same' },
  { B: 4, T: 33, C: 130, V: 3001, maxT: 40 },
  { B: 5, T: 13, C: 12, V: 3001, maxT: 13, tokens: 'few' },
  { B: 2, T: 16, C: 8, V: 50257, maxT: 32 },
  { B: 3, T: 10, C: 384, V: 65, maxT: 16 },
];

describe('encoder', () => {
  for (const c of cases) {
    it(`forward and backward match float64 at B=${c.B} T=${c.T} C=${c.C} V=${c.V} maxT=${c.maxT} ${c.tokens ?? 'random'}`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const rt = await gpuRuntime();
      const { B, T, C, V, maxT } = c;
      const BT = B * T;
      const tok = makeTokens(c, rand);
      const wte = randn(V * C, rand);
      const wpe = randn(maxT * C, rand);
      const dout = randn(BT * C, rand);
      const dwte0 = randn(V * C, rand);
      const dwpe0 = randn(maxT * C, rand);
      const tTok = rt.upload(tok, [BT], 'tokens');
      const tWte = rt.upload(wte, [V, C], 'wte');
      const tWpe = rt.upload(wpe, [maxT, C], 'wpe');
      const tDout = rt.upload(dout, [B, T, C], 'dout');
      const out = rt.tensor([B, T, C], 'out');
      poison(rt, out);
      encoderForward(rt, { out, tokens: tTok, wte: tWte, wpe: tWpe }, { B, T, C });
      const what = `B=${B} T=${T} C=${C} V=${V} seed=${seed}`;
      expectClose(`encoder fwd ${what}`, await rt.read(out), forwardRef(c, tok, wte, wpe), 1e-6, 1e-6);

      const dwte = rt.upload(dwte0, [V, C], 'dwte');
      const dwpe = rt.upload(dwpe0, [maxT, C], 'dwpe');
      const index = new TokenIndex(rt, BT, V);
      index.update(tok);
      encoderBackward(rt, { dwte, dwpe, dout: tDout, index }, { B, T, C, V });
      const ref = backwardRef(c, tok, dout, dwte0, dwpe0);
      const gotWte = await rt.read(dwte);
      const gotWpe = await rt.read(dwpe);
      expectClose(`encoder dwte ${what}`, gotWte, ref.dwte, 1e-4, 1e-5);
      expectClose(`encoder dwpe ${what}`, gotWpe, ref.dwpe, 1e-4, 1e-5);
      // Rows of tokens that do not occur, and positions >= T, are untouched bit for bit.
      const present = new Set(tok);
      for (let v = 0; v < V; v++) {
        if (present.has(v)) continue;
        for (let j = 0; j < C; j++) {
          if (!Object.is(gotWte[v * C + j], dwte0[v * C + j])) throw new Error(`dwte row ${v} (absent token) changed, ${what}`);
        }
      }
      for (let i = T * C; i < maxT * C; i++) {
        if (!Object.is(gotWpe[i], dwpe0[i])) throw new Error(`dwpe element ${i} (t >= T) changed, ${what}`);
      }
      for (const t of [tTok, tWte, tWpe, tDout, out, dwte, dwpe, index.tensor]) rt.release(t);
    });
  }

  it('TokenIndex builds a CSR index with positions in increasing order, and reuses its buffers', async () => {
    const rt = await gpuRuntime();
    const tokens = Uint32Array.from([5, 2, 5, 0, 2, 5]);
    const index = new TokenIndex(rt, 6, 7);
    index.update(tokens);
    expect(index.distinct).toBe(3);
    const got = Array.from(await rt.readU32(index.tensor));
    expect(got.slice(0, 3)).toEqual([0, 2, 5]); // distinct tokens
    expect(got.slice(6, 10)).toEqual([0, 1, 3, 6]); // offsets
    expect(got.slice(13, 19)).toEqual([3, 1, 4, 0, 2, 5]); // positions
    const buffer = index.tensor.buffer;
    index.update(Uint32Array.from([1, 1, 1, 1, 1, 1]));
    expect(index.tensor.buffer).toBe(buffer);
    expect(index.distinct).toBe(1);
    expect(() => index.update(Uint32Array.from([0, 1, 7, 0, 0, 0]))).toThrow(/TokenIndex.*token 7 at position 2.*V = 7/);
    expect(() => index.update(Uint32Array.from([0, 1]))).toThrow(/TokenIndex.*2 tokens, expected B\*T = 6/);
  });

  it('forward clamps token ids >= V instead of reading out of bounds', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const B = 1,
      T = 6,
      C = 5,
      V = 3;
    // wte is a view followed by NaN: any read past row V-1 would poison the output.
    const big = rt.tensor([V * C + 4 * C + 64], 'big');
    poison(rt, big);
    const wte = randn(V * C, rand);
    rt.write(big, wte);
    const tWte = rt.view(big, 0, [V, C], 'wte view');
    const wpe = randn(T * C, rand);
    const tok = Uint32Array.from([0, 3, 2, 4, 1000000, 0xffffffff]);
    const out = rt.tensor([B, T, C], 'out');
    poison(rt, out);
    encoderForward(rt, { out, tokens: rt.upload(tok, [B * T], 'tokens'), wte: tWte, wpe: rt.upload(wpe, [T, C], 'wpe') }, { B, T, C });
    const clamped = tok.map((x) => Math.min(x, V - 1));
    expectClose(`encoder clamp seed=${seed}`, await rt.read(out), forwardRef({ B, T, C, V, maxT: T }, clamped, wte, wpe), 1e-6, 1e-6);
  });

  it('backward works on views into one flat gradient buffer and is bitwise deterministic', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const B = 12,
      T = 64,
      V = 65,
      maxT = 80;
    for (const C of [128, 130]) {
      const a = rt.viewAlignment;
      const wteOff = a;
      const wpeOff = Math.ceil((wteOff + V * C) / a) * a;
      const total = wpeOff + maxT * C + a;
      const tok = randInt(B * T, V, rand);
      const dout = rt.upload(randn(B * T * C, rand), [B, T, C], 'dout');
      const init = randn(total, rand);
      const index = new TokenIndex(rt, B * T, V);
      index.update(tok);
      const results: Float32Array[] = [];
      for (let rep = 0; rep < 2; rep++) {
        const grads = rt.upload(init, [total], 'grads');
        const dwte = rt.view(grads, wteOff, [V, C], 'dwte');
        const dwpe = rt.view(grads, wpeOff, [maxT, C], 'dwpe');
        encoderBackward(rt, { dwte, dwpe, dout, index }, { B, T, C, V });
        results.push(await rt.read(grads));
        rt.release(grads);
      }
      expect(Buffer.from(results[0].buffer).equals(Buffer.from(results[1].buffer)), `encoder backward determinism C=${C} seed=${seed}`).toBe(true);
      // Bytes outside the two views are untouched.
      for (const i of [0, wteOff - 1, wteOff + V * C, wpeOff - 1, wpeOff + maxT * C, total - 1]) {
        if (i >= 0 && i < total && (i < wteOff || (i >= wteOff + V * C && i < wpeOff) || i >= wpeOff + maxT * C)) {
          expect(Object.is(results[0][i], init[i]), `element ${i} outside the views changed, C=${C} seed=${seed}`).toBe(true);
        }
      }
    }
  });

  it('names the op when shapes are wrong', async () => {
    const rt = await gpuRuntime();
    const B = 2,
      T = 4,
      C = 8,
      V = 10;
    const tokens = rt.upload(new Uint32Array(B * T), [B * T], 'tokens');
    const wte = rt.tensor([V, C], 'wte');
    const wpe = rt.tensor([T, C], 'wpe');
    const out = rt.tensor([B, T, C], 'out');
    const small = rt.tensor([7], 'small');
    expect(() => encoderForward(rt, { out: small, tokens, wte, wpe }, { B, T, C })).toThrow(/encoder_forward: out small holds 7 elements, needs 64/);
    expect(() => encoderForward(rt, { out, tokens: small, wte, wpe }, { B, T, C })).toThrow(/encoder_forward: tokens small must be u32/);
    expect(() => encoderForward(rt, { out, tokens, wte, wpe: small }, { B, T, C })).toThrow(/encoder_forward: wpe small/);
    const index = new TokenIndex(rt, B * T, V);
    index.update(new Uint32Array(B * T));
    expect(() => encoderBackward(rt, { dwte: small, dwpe: wpe, dout: out, index }, { B, T, C, V })).toThrow(/encoder_backward: dwte small/);
    expect(() => encoderBackward(rt, { dwte: wte, dwpe: small, dout: out, index }, { B, T, C, V })).toThrow(/encoder_backward: dwpe small/);
    expect(() => encoderBackward(rt, { dwte: wte, dwpe: wpe, dout: small, index }, { B, T, C, V })).toThrow(/encoder_backward: dout small/);
    expect(() => encoderBackward(rt, { dwte: wte, dwpe: wpe, dout: out, index }, { B: 1, T, C, V })).toThrow(
      /encoder_backward: index was built for B\*T = 8/,
    );
  });
});
