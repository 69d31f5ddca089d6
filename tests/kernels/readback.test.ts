// GPU -> host reads reuse their staging buffers by size (Runtime.readBytes): a reused buffer must never hand back an
// earlier read's bytes, reads in flight together must each get their own tensor's values, and reads past the kept
// size or of part of a tensor (from its start or at an offset) stay exact.
import { describe, expect, it } from 'vitest';
import { freshSeed, gpuRuntime, randn, rng } from '../support/gpu';
import { sameBits } from '../support/bits';

describe('readback staging reuse', () => {
  it('a read after a write always sees the new values, read after read', async () => {
    const rt = await gpuRuntime();
    const rand = rng(freshSeed());
    const n = 32771; // an awkward size, not a multiple of 4 values
    const t = rt.tensor([n], 'rb.seq');
    for (let rep = 0; rep < 12; rep++) {
      const want = randn(n, rand);
      rt.write(t, want);
      expect(await rt.read(t)).toEqual(want);
    }
    rt.release(t);
  });

  it('reads of the same size in flight together each get their own values', async () => {
    const rt = await gpuRuntime();
    const rand = rng(freshSeed());
    const n = 4099;
    const wants = Array.from({ length: 6 }, () => randn(n, rand));
    const ts = wants.map((w, i) => rt.upload(w, [n], `rb.par${i}`));
    for (let rep = 0; rep < 3; rep++) {
      const got = await Promise.all(ts.map((t) => rt.read(t)));
      got.forEach((g, i) => expect(g).toEqual(wants[i]));
    }
    for (const t of ts) rt.release(t);
  });

  it('part of a tensor, and a read larger than the kept buffers (16 MiB), stay exact', async () => {
    const rt = await gpuRuntime();
    const rand = rng(freshSeed());
    const big = (16 << 20) / 4 + 5;
    const w = randn(big, rand);
    const t = rt.upload(w, [big], 'rb.big');
    expect(sameBits(await rt.read(t), w)).toBe(true);
    expect(await rt.read(t, 7)).toEqual(w.subarray(0, 7));
    w[3] = 42;
    rt.write(t, w);
    expect(await rt.read(t, 7)).toEqual(w.subarray(0, 7));
    expect(sameBits(await rt.read(t), w)).toBe(true);
    rt.release(t);
  });

  it('a range at an offset (readRange) is exactly those values, and a range outside the tensor is refused', async () => {
    const rt = await gpuRuntime();
    const rand = rng(freshSeed());
    const n = 10007;
    const w = randn(n, rand);
    const t = rt.upload(w, [n], 'rb.range');
    for (const [offset, count] of [
      [0, 1],
      [1, 3],
      [4093, 2051],
      [n - 5, 5],
      [n, 0],
    ]) {
      expect(await rt.readRange(t, offset, count)).toEqual(w.subarray(offset, offset + count));
    }
    // A part written at an offset lands there and nowhere else.
    const part = randn(77, rand);
    rt.write(t, part, 301);
    w.set(part, 301);
    expect(sameBits(await rt.read(t), w)).toBe(true);
    await expect(rt.readRange(t, n - 4, 5)).rejects.toThrow(/out of its/);
    await expect(rt.readRange(t, -1, 2)).rejects.toThrow(/out of its/);
    await expect(rt.readRange(t, 0.5, 2)).rejects.toThrow(/out of its/);
    rt.release(t);
  });
});
