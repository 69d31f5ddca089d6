// GPU -> host reads reuse their staging buffers by size (Runtime.readBytes): a reused buffer must never hand back an
// earlier read's bytes, reads in flight together must each get their own tensor's values, and reads past the kept
// size or of part of a tensor (from its start or at an offset) stay exact.
import { describe, expect, it } from 'vitest';
import { freshSeed, gpuRuntime, randn, rng } from '../support/gpu';
import { sameBits } from '../support/bits';
import { digestFloats } from '../../src/model/digest';
import { ParamStore } from '../../src/model/params';

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

  it('readWith hands over exactly the values in the mapped buffer, once per read, and leaves nothing mapped behind', async () => {
    const rt = await gpuRuntime();
    const rand = rng(freshSeed());
    const n = 9001;
    const w = randn(n, rand);
    const t = rt.upload(w, [n], 'rb.with');
    for (let rep = 0; rep < 3; rep++) {
      // What `use` sees is the tensor's values; a copy taken inside outlives the read.
      const seen = await rt.readWith(t, n, (v) => v.slice());
      expect(sameBits(seen, w)).toBe(true);
      expect(await rt.readWith(t, n, digestFloats)).toBe(digestFloats(w));
      expect(await rt.readWith(t, 3, (v) => [...v])).toEqual([...w.subarray(0, 3)]);
      w[rep] += 1;
      rt.write(t, w);
    }
    // A throwing `use` rejects the read; the next reads still work.
    await expect(
      rt.readWith(t, n, () => {
        throw new Error('use failed');
      }),
    ).rejects.toThrow(/use failed/);
    expect(sameBits(await rt.read(t), w)).toBe(true);
    await expect(rt.readWith(t, n + 1, digestFloats)).rejects.toThrow(/out of its/);
    rt.release(t);
  });

  it('ParamStore.digest is the digest of the flat buffer read back', async () => {
    const rt = await gpuRuntime();
    const rand = rng(freshSeed());
    const ps = new ParamStore(rt, [
      { name: 'a', shape: [37, 5], decay: true, layer: 0 },
      { name: 'b', shape: [11], decay: false, layer: 0 },
    ]);
    for (const which of ['params', 'grads', 'm', 'v'] as const) {
      ps.writeFlat(which, randn(ps.total, rand));
      expect(await ps.digest(which)).toBe(digestFloats(await ps.readFlat(which)));
    }
  });
});
