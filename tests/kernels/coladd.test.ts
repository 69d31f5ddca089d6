// The strided column add (the bottleneck passthrough) against a float64 reference: both directions (narrow from
// wide, wide from narrow) at awkward sizes; the columns and rows it must not touch keep their bits; the columns of
// src it must not read hold NaN, so reading one fails; bad dimensions are refused naming the op.
import { describe, expect, it } from 'vitest';
import { colAdd } from '../../src/gpu/ops/coladd';
import { freshSeed, gpuRuntime, randn, rng } from '../support/gpu';

async function run(rows: number, cols: number, dstStride: number, srcStride: number, seed: number) {
  const rand = rng(seed);
  const rt = await gpuRuntime();
  const d0 = randn(rows * dstStride + 3, rand); // 3 trailing elements past the last row must stay untouched
  const s0 = randn(rows * srcStride, rand);
  for (let r = 0; r < rows; r++) for (let c = cols; c < srcStride; c++) s0[r * srcStride + c] = Number.NaN;
  const dst = rt.upload(d0, [d0.length], 'dst');
  const src = rt.upload(s0, [s0.length], 'src');
  colAdd(rt, dst, src, { rows, cols, dstStride, srcStride });
  const out = await rt.read(dst);
  const again = rt.upload(d0, [d0.length], 'dst2');
  colAdd(rt, again, src, { rows, cols, dstStride, srcStride });
  const out2 = await rt.read(again);
  for (const t of [dst, src, again]) rt.release(t);
  return { d0, s0, out, out2 };
}

describe('coladd', () => {
  const cases: [string, number, number, number, number][] = [
    ['narrow from wide', 37, 5, 5, 12],
    ['wide from narrow', 37, 5, 12, 5],
    ['narrow from wide, one row', 1, 7, 7, 9],
    ['wide from narrow, 300 rows', 300, 13, 40, 13],
    ['all columns', 19, 11, 11, 11],
  ];
  for (const [name, rows, cols, dstStride, srcStride] of cases) {
    it(`${name}: rows ${rows}, cols ${cols}, strides ${dstStride}/${srcStride}`, async () => {
      const seed = freshSeed();
      const { d0, s0, out, out2 } = await run(rows, cols, dstStride, srcStride, seed);
      for (let i = 0; i < d0.length; i++) {
        const r = Math.floor(i / dstStride);
        const c = i % dstStride;
        const touched = r < rows && c < cols;
        const want = touched ? Math.fround(d0[i] + s0[r * srcStride + c]) : d0[i];
        if (out[i] !== want) throw new Error(`coladd ${name} seed=${seed}: dst[${i}] (row ${r}, col ${c}) = ${out[i]}, expected ${want}`);
      }
      expect(Buffer.from(out2.buffer).equals(Buffer.from(out.buffer)), `bitwise repeatable, seed=${seed}`).toBe(true);
    });
  }

  it('refuses dimensions that do not fit', async () => {
    const rt = await gpuRuntime();
    const a = rt.tensor([20], 'a');
    const b = rt.tensor([20], 'b');
    expect(() => colAdd(rt, a, b, { rows: 4, cols: 6, dstStride: 5, srcStride: 5 })).toThrow(/coladd: 6 columns do not fit/);
    expect(() => colAdd(rt, a, b, { rows: 5, cols: 2, dstStride: 5, srcStride: 4 })).toThrow(/coladd: dst a has 20 elements, 5 rows of 5 need 25/);
    expect(() => colAdd(rt, a, b, { rows: 0, cols: 2, dstStride: 5, srcStride: 4 })).toThrow(/coladd: rows must be a positive integer/);
    rt.release(a);
    rt.release(b);
  });
});
