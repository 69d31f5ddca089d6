// The local-steps sync kernels (shaders/outer.wgsl via src/model/outer-optimizer.ts) against float64: the
// error-feedback bookkeeping and the outer Nesterov step (PyTorch SGD, nesterov=True) over several outer steps, at
// awkward sizes, outputs NaN-poisoned, elements past n untouched, bitwise deterministic.
import { describe, expect, it } from 'vitest';
import { outerAccumulate, outerNesterov, outerPseudoGrad, packSyncPayload, unpackSyncPayload, nameHash } from '../../src/model/outer-optimizer';
import { expectClose, freshSeed, gpuRuntime, poison, randn, rng } from '../support/gpu';

const SIZES = [1, 3, 255, 257, 70_001];
const PAD = 7; // elements past n that every kernel must leave alone

/** torch.optim.SGD(nesterov=True, dampening=0) on θ_sync with gradient d = mean of the replicas' pseudo-gradients. */
function refNesterov(sync: Float64Array, mom: Float64Array, acc: ArrayLike<number>, r: number, lr: number, mu: number): void {
  for (let i = 0; i < sync.length; i++) {
    const d = acc[i] / r;
    mom[i] = mu * mom[i] + d;
    sync[i] -= lr * (d + mu * mom[i]);
  }
}

describe('outer sync kernels', () => {
  for (const n of SIZES) {
    it(`pseudo-gradient into the error buffer, then minus / plus a decoded payload, match float64 at n=${n}`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const rt = await gpuRuntime();
      const [sync, params, ef, dec] = [randn(n + PAD, rand), randn(n + PAD, rand), randn(n + PAD, rand, 0.01), randn(n + PAD, rand, 0.1)];
      const ts = { sync: rt.upload(sync, [n + PAD], 'sync'), params: rt.upload(params, [n + PAD], 'params'), ef: rt.upload(ef, [n + PAD], 'ef') };
      const decT = rt.upload(dec, [n + PAD], 'dec');
      outerPseudoGrad(rt, ts, n);
      const afterPg = await rt.read(ts.ef);
      expectClose(
        `pseudo-grad n=${n} seed=${seed}`,
        afterPg.subarray(0, n),
        Array.from({ length: n }, (_, i) => ef[i] + (sync[i] - params[i])),
        1e-6,
        1e-6,
      );
      outerAccumulate(rt, { dst: ts.ef, dec: decT }, n, -1);
      const afterSub = await rt.read(ts.ef);
      expectClose(
        `ef - dec n=${n} seed=${seed}`,
        afterSub.subarray(0, n),
        Array.from({ length: n }, (_, i) => afterPg[i] - dec[i]),
        0,
        1e-7,
      );
      outerAccumulate(rt, { dst: ts.ef, dec: decT }, n, 1);
      const afterAdd = await rt.read(ts.ef);
      expectClose(
        `ef + dec n=${n} seed=${seed}`,
        afterAdd.subarray(0, n),
        Array.from({ length: n }, (_, i) => afterSub[i] + dec[i]),
        0,
        1e-7,
      );
      expect(Array.from(afterAdd.subarray(n)), `elements past n seed=${seed}`).toEqual(Array.from(ef.subarray(n)));
      for (const t of [ts.sync, ts.params, ts.ef, decT]) rt.release(t);
    });

    it(`three outer Nesterov steps match float64 PyTorch SGD(nesterov) at n=${n}`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const rt = await gpuRuntime();
      const [lr, mu, R] = [0.7, 0.9, 3];
      const sync0 = randn(n + PAD, rand);
      const sync = rt.upload(sync0, [n + PAD], 'sync');
      const mom = rt.tensor([n + PAD], 'mom');
      rt.fill(mom, 0);
      const params = rt.tensor([n + PAD], 'params');
      poison(rt, params);
      const acc = rt.tensor([n + PAD], 'acc');
      const refSync = Float64Array.from(sync0.subarray(0, n));
      const refMom = new Float64Array(n);
      for (let k = 0; k < 3; k++) {
        const a = randn(n + PAD, rand, 0.05);
        rt.write(acc, a);
        outerNesterov(rt, { acc, sync, mom, params }, { n, replicas: R, lr, momentum: mu });
        refNesterov(refSync, refMom, a, R, lr, mu);
        const [s, m, p] = [await rt.read(sync), await rt.read(mom), await rt.read(params)];
        expectClose(`sync step ${k} n=${n} seed=${seed}`, s.subarray(0, n), refSync, 1e-6, 1e-5);
        expectClose(`momentum step ${k} n=${n} seed=${seed}`, m.subarray(0, n), refMom, 1e-7, 1e-5);
        expect(Buffer.compare(Buffer.from(p.buffer, 0, n * 4), Buffer.from(s.buffer, 0, n * 4)), `params == sync bitwise, seed=${seed}`).toBe(0);
        expect(Array.from(s.subarray(n)), `sync past n seed=${seed}`).toEqual(Array.from(sync0.subarray(n)));
        expect(
          p.subarray(n).every((x) => Number.isNaN(x)),
          `params past n untouched seed=${seed}`,
        ).toBe(true);
      }
      for (const t of [sync, mom, params, acc]) rt.release(t);
    });
  }

  it('lr 1 and momentum 0 make the outer step plain averaging of the replicas (θ_sync − mean Δ = mean θ_r)', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const n = 1031;
    const R = 4;
    const sync0 = randn(n, rand);
    const replicas = Array.from({ length: R }, () => randn(n, rand));
    const sync = rt.upload(sync0, [n], 'sync');
    const mom = rt.tensor([n], 'mom');
    rt.fill(mom, 0);
    const acc = rt.tensor([n], 'acc');
    rt.fill(acc, 0);
    const params = rt.tensor([n], 'params');
    poison(rt, params);
    const ef = rt.tensor([n], 'ef');
    for (const w of replicas) {
      // Δ_r = θ_sync − θ_r into a zeroed buffer, summed in rank order.
      const theta = rt.upload(w, [n], 'theta');
      rt.fill(ef, 0);
      outerPseudoGrad(rt, { sync, params: theta, ef }, n);
      outerAccumulate(rt, { dst: acc, dec: ef }, n, 1);
      rt.release(theta);
    }
    outerNesterov(rt, { acc, sync, mom, params }, { n, replicas: R, lr: 1, momentum: 0 });
    const p = await rt.read(params);
    const mean = Array.from({ length: n }, (_, i) => replicas.reduce((a, w) => a + w[i], 0) / R);
    expectClose(`mean of replicas seed=${seed}`, p, mean, 1e-6, 1e-5);
    for (const t of [sync, mom, acc, params, ef]) rt.release(t);
  });

  it('is bitwise deterministic', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const n = 5003;
    const [s0, a0] = [randn(n, rand), randn(n, rand)];
    const once = async () => {
      const sync = rt.upload(s0, [n], 'sync');
      const acc = rt.upload(a0, [n], 'acc');
      const mom = rt.upload(a0, [n], 'mom');
      const params = rt.tensor([n], 'params');
      outerNesterov(rt, { acc, sync, mom, params }, { n, replicas: 3, lr: 0.7, momentum: 0.9 });
      const out = await rt.read(params);
      for (const t of [sync, acc, mom, params]) rt.release(t);
      return out;
    };
    const [x, y] = [await once(), await once()];
    expect(Buffer.compare(Buffer.from(x.buffer), Buffer.from(y.buffer)), `seed=${seed}`).toBe(0);
  });

  it('refuses bad hyperparameters and short tensors, naming the op', async () => {
    const rt = await gpuRuntime();
    const t = rt.tensor([8], 't');
    const u = rt.tensor([8], 'u');
    const w = rt.tensor([8], 'w');
    const small = rt.tensor([4], 'small');
    const x = rt.tensor([8], 'x');
    expect(() => outerNesterov(rt, { acc: t, sync: u, mom: w, params: x }, { n: 8, replicas: 0, lr: 0.7, momentum: 0.9 })).toThrow(
      /outer_nesterov: replicas/,
    );
    expect(() => outerNesterov(rt, { acc: t, sync: u, mom: w, params: x }, { n: 8, replicas: 2, lr: Number.NaN, momentum: 0.9 })).toThrow(
      /outer_nesterov: lr/,
    );
    expect(() => outerNesterov(rt, { acc: t, sync: u, mom: w, params: x }, { n: 8, replicas: 2, lr: 0.7, momentum: 1 })).toThrow(
      /outer_nesterov: momentum/,
    );
    expect(() => outerNesterov(rt, { acc: t, sync: u, mom: w, params: small }, { n: 8, replicas: 2, lr: 0.7, momentum: 0.9 })).toThrow(
      /outer_nesterov: params small/,
    );
    expect(() => outerPseudoGrad(rt, { sync: t, params: u, ef: small }, 8)).toThrow(/outer_pseudo_grad: ef small/);
    expect(() => outerAccumulate(rt, { dst: t, dec: t }, 8, 1)).toThrow(/outer_add/);
    for (const z of [t, u, w, small, x]) rt.release(z);
  });
});

describe('sync payload framing', () => {
  const names = ['transformer.wte.weight', 'transformer.h.0.ln_1.weight', 'transformer.h.0.ln_1.bias'];
  const parts = names.map((name, i) => ({ hash: nameHash(name), bytes: Uint8Array.from({ length: 5 + i }, (_, k) => k + i) }));

  it('round-trips the tensors in order', () => {
    const back = unpackSyncPayload(packSyncPayload(parts), names);
    expect(back.map((b) => Array.from(b))).toEqual(parts.map((p) => Array.from(p.bytes)));
  });

  it('refuses corrupt payloads with a named problem', () => {
    const good = packSyncPayload(parts);
    const mutate = (f: (b: Uint8Array, dv: DataView) => void) => {
      const b = good.slice();
      f(b, new DataView(b.buffer));
      return b;
    };
    expect(() => unpackSyncPayload(good.subarray(0, 5), names)).toThrow(/local-sync payload: 5 bytes, shorter than its header/);
    expect(() =>
      unpackSyncPayload(
        mutate((_, dv) => dv.setUint32(0, 1, true)),
        names,
      ),
    ).toThrow(/bad magic/);
    expect(() => unpackSyncPayload(good, names.slice(1))).toThrow(/3 tensors, this stage holds 2/);
    expect(() => unpackSyncPayload(good, [names[1], names[0], names[2]])).toThrow(/tensor 0 is not transformer.h.0.ln_1.weight \(layout mismatch\)/);
    expect(() =>
      unpackSyncPayload(
        mutate((_, dv) => dv.setUint32(12, 1e6, true)),
        names,
      ),
    ).toThrow(/overruns/);
    expect(() => unpackSyncPayload(Uint8Array.from([...good, 0]), names)).toThrow(/1 trailing bytes/);
    expect(() =>
      unpackSyncPayload(
        mutate((_, dv) => dv.setUint32(4, 0xffffffff, true)),
        names,
      ),
    ).toThrow(/tensors, this stage holds 3/);
  });
});
