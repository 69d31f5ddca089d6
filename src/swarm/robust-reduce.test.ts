// Robust reduce over in-memory framed transports (real framing, no network): honest replicas end bitwise equal, a
// non-finite / wrong-length / missing vector is excluded by everyone, and all-honest equals the sum within rounding.
import { afterEach, describe, expect, it } from 'vitest';
import { FramedTransport } from '../net/framed-transport';
import { createMemoryChannelPair } from '../net/memory-channel';
import type { Transport } from '../net/transport';
import { TRUST_NONE, type TrustSpec } from '../protocol/run-config';
import { randn, rng, testSeed } from '../../tests/support/random';
import { attachSwarmTransport } from './allreduce';
import { RobustMailbox, robustReduce, ROBUST_KIND, type RobustReduceResult } from './robust-reduce';
import type { TensorMeta } from '../net/tensor';
import { robustMeta } from '../protocol/tensors';
import { judgeRobust } from '../coordinator/strikes';
import { testIdentity } from '../../tests/support/identity';
import type { Identity } from '../net/identity';
import { robustSigningText } from '../protocol/digest-signing';
import { digestVector } from './step-trace';

const open: Transport[] = [];
afterEach(() => {
  for (const t of open.splice(0)) t.close();
});

function mesh(R: number): (Transport | undefined)[][] {
  const links: (Transport | undefined)[][] = Array.from({ length: R }, () => new Array<Transport | undefined>(R));
  for (let i = 0; i < R; i++)
    for (let j = i + 1; j < R; j++) {
      const [a, b] = createMemoryChannelPair();
      links[i][j] = new FramedTransport(`p${j}`, a);
      links[j][i] = new FramedTransport(`p${i}`, b);
      for (const t of [links[i][j], links[j][i]]) {
        attachSwarmTransport(t!);
        open.push(t!);
      }
    }
  return links;
}

/** Replica `p<j>`'s identity (the mesh names the far end of each link `p<j>`). */
const identity = (j: number): Promise<Identity> => testIdentity(`robust p${j}`);
const keys = new Map<string, string>();
async function signing(rank: number, R: number): Promise<{ runId: string; signer: Identity; keyOf: (id: string) => string | undefined }> {
  for (let j = 0; j < R; j++) keys.set(`p${j}`, (await identity(j)).publicKey);
  return { runId: 'robust-test', signer: await identity(rank), keyOf: (id) => keys.get(id) };
}
/** The coordinator's view: member `p<j>`'s key. */
const memberKeys = (members: string[]) => (id: string) => keys.get(`p${members.indexOf(id)}`);

const trust = (aggregation: TrustSpec['aggregation']): TrustSpec => ({ ...TRUST_NONE, aggregation });
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

async function run(
  grads: Float32Array[],
  counts: number[],
  M: number,
  mode: TrustSpec['aggregation'],
  skip: number[] = [],
  timeoutMs = 10_000,
): Promise<(RobustReduceResult | null)[]> {
  const links = mesh(grads.length);
  return Promise.all(
    grads.map((g, rank) =>
      skip.includes(rank)
        ? Promise.resolve(null)
        : signing(rank, grads.length).then((sg) =>
            robustReduce({
              links: links[rank],
              rank,
              step: 3,
              attempt: 1,
              stage: 0,
              grad: g,
              count: counts[rank],
              M,
              trust: trust(mode),
              timeoutMs,
              ...sg,
            }),
          ),
    ),
  );
}

/** A robust-grad meta with one to three fields broken (missing, wrong type, out of range), or a valid one. */
function fuzzMeta(r: () => number, n: number): TensorMeta {
  const m: TensorMeta = {
    step: 1000 + Math.floor(r() * 1000),
    attempt: 0,
    stage: 0,
    rank: Math.floor(r() * 3),
    count: 1,
    n,
    digest: '0'.repeat(32),
    sig: 'A'.repeat(86),
  };
  const keys = Object.keys(m);
  const bad: (string | number | boolean | null)[] = [-1, 1.5, 2 ** 53, 'x', '', null, true, 1 << 21]; // (JSON meta: no NaN on the wire)
  const edits = Math.floor(r() * 4);
  for (let e = 0; e < edits; e++) {
    const k = keys[Math.floor(r() * keys.length)];
    if (r() < 0.2) delete m[k];
    else m[k] = bad[Math.floor(r() * bad.length)];
  }
  return m;
}

describe('robust-grad decoding (fuzz)', () => {
  it('10,000 seeded malformed vectors: none throws, the mailbox stays bounded, a reduce after them still works', async () => {
    const r = rng(testSeed('robust reduce fuzz'));
    const links = mesh(2);
    const sender = links[0][1]!;
    const box = RobustMailbox.of(links[1][0]!);
    const dtypes = ['f32', 'f32', 'f32', 'u8', 'i32'] as const;
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      const dtype = dtypes[Math.floor(r() * dtypes.length)];
      const n = Math.floor(r() * 9);
      const data = dtype === 'f32' ? randn(n, r) : dtype === 'i32' ? new Int32Array(n) : new Uint8Array(n);
      if (data instanceof Float32Array && n > 0 && r() < 0.3) data[Math.floor(r() * n)] = [Number.NaN, Infinity, -Infinity][Math.floor(r() * 3)];
      await sender.sendTensor({ kind: ROBUST_KIND, dtype, shape: [n], data, meta: fuzzMeta(r, n) });
    }
    // Every one was dropped at the meta, or kept under its own (never-taken) key within the bound.
    const out = await Promise.all(
      [0, 1].map(async (rank) =>
        robustReduce({
          links: links[rank],
          rank,
          step: 3,
          attempt: 0,
          stage: 0,
          grad: Float32Array.of(rank + 1, 2),
          count: 1,
          M: 2,
          trust: trust('trimmed-mean'),
          timeoutMs: 10_000,
          ...(await signing(rank, 2)),
        }),
      ),
    );
    expect(box.dropped).toBeGreaterThan(N / 10);
    expect(box.buffered).toBeLessThanOrEqual(RobustMailbox.maxBuffered);
    for (const o of out) {
      expect(o.excluded).toEqual([]);
      expect([...o.grad]).toEqual([3, 4]);
    }
  }, 60_000);
});

describe('robust reduce', () => {
  for (const mode of ['trimmed-mean', 'centered-clip'] as const)
    it(`${mode}: all honest, equal counts: every replica gets the same bits, M x the mean = the sum within rounding`, async () => {
      const r = rng(testSeed(`robust reduce honest ${mode}`));
      const n = 1237;
      const base = randn(n, r);
      const grads = Array.from({ length: 3 }, () => base.map((b) => 2 * b + 0.05 * (r() - 0.5)));
      const out = await run(grads, [2, 2, 2], 6, mode);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const sum = grads[0][i] + grads[1][i] + grads[2][i];
        worst = Math.max(worst, Math.abs(out[0]!.grad[i] - sum) / (1e-6 + Math.abs(sum)));
      }
      expect(worst).toBeLessThan(1e-5);
      for (const o of out) {
        expect(Buffer.compare(bits(o!.grad), bits(out[0]!.grad))).toBe(0);
        expect(o!.excluded).toEqual([]);
        expect(o!.digests).toEqual(out[0]!.digests);
        expect(o!.any).toBe(true);
      }
    });

  it('a NaN replica and a wrong-length replica are excluded by every honest replica, which agree bitwise', async () => {
    const r = rng(testSeed('robust reduce byzantine'));
    const n = 300;
    const grads = Array.from({ length: 5 }, () => randn(n, r));
    grads[1][17] = Number.NaN;
    grads[3] = randn(n - 1, r);
    const out = await run(grads, [1, 1, 1, 1, 1], 5, 'trimmed-mean');
    const honest = [0, 2, 4];
    for (const k of honest) {
      const o = out[k]!;
      expect(o.excluded.map((e) => e.rank)).toEqual([1, 3]);
      expect(o.excluded[0].reason).toBe('non-finite');
      for (const x of o.grad) expect(Number.isFinite(x)).toBe(true);
      expect(Buffer.compare(bits(o.grad), bits(out[0]!.grad))).toBe(0);
      expect(o.digests[1]).toBe(out[0]!.digests[1]); // all saw the same (refused) vector from rank 1
    }
  });

  it('an equivocating rank (different vectors to different replicas): the digests differ, the verdict strikes it and re-runs', async () => {
    const r = rng(testSeed('robust reduce equivocation'));
    const n = 40;
    const links = mesh(3);
    const bad = 2;
    const grads = [randn(n, r), randn(n, r)];
    const honest = [0, 1].map(async (rank) =>
      robustReduce({
        links: links[rank],
        rank,
        step: 5,
        attempt: 0,
        stage: 0,
        grad: grads[rank],
        count: 1,
        M: 3,
        trust: trust('centered-clip'),
        timeoutMs: 10_000,
        ...(await signing(rank, 3)),
      }),
    );
    // The equivocator signs each of its two vectors properly: each receiver holds a valid signature.
    const liar = await identity(bad);
    for (const to of [0, 1]) {
      const data = randn(n, r);
      const digest = await digestVector(data);
      const sig = await liar.sign(robustSigningText({ runId: 'robust-test', step: 5, attempt: 0, stage: 0, rank: bad }, digest));
      const meta = robustMeta({ step: 5, attempt: 0, stage: 0, rank: bad, count: 1, n, digest, sig });
      await links[bad][to]!.sendTensor({ kind: ROBUST_KIND, dtype: 'f32', shape: [n], data, meta });
    }
    const out = await Promise.all(honest);
    expect(out[0].digests[bad]).not.toBe(out[1].digests[bad]);
    expect(out[0].excluded).toEqual([]);
    const members = ['h0', 'h1', 'x'];
    const report = (o: RobustReduceResult) => ({ value: 1, robust: { digests: o.digests, sigs: o.sigs, excluded: o.excluded } });
    const ctx = { runId: 'robust-test', step: 5, attempt: 0, keyOf: memberKeys(members) };
    const verdict = await judgeRobust(0, members, new Map(out.map((o, k) => [members[k], report(o)])), ctx);
    expect(verdict.strikes.map((x) => x.peerId)).toEqual(['x']);
    expect(verdict.rerun).toMatch(/different vectors from x/);

    // A receiver that reports a digest its sender never signed: only the reporter is struck, the sender never.
    const framed = { ...report(out[0]), robust: { ...report(out[0]).robust, digests: out[0].digests.map((d, j) => (j === 1 ? 'f'.repeat(32) : d)) } };
    const agreeing = [report(out[0]), report(out[0])].map((x) => ({ ...x, robust: { ...x.robust } }));
    const frame = await judgeRobust(
      0,
      members,
      new Map([
        ['h0', framed],
        ['h1', agreeing[0]],
        ['x', agreeing[1]],
      ]),
      ctx,
    );
    expect(frame.strikes.map((x) => x.peerId)).toEqual(['h0']);
    expect(frame.strikes[0].reason).toMatch(/without its valid signature/);
  });

  it('a vector whose signature does not verify (another key, another slot) is refused and reported as nothing', async () => {
    const r = rng(testSeed('robust reduce bad signature'));
    const n = 20;
    const links = mesh(2);
    const receiving = robustReduce({
      links: links[0],
      rank: 0,
      step: 2,
      attempt: 0,
      stage: 0,
      grad: randn(n, r),
      count: 1,
      M: 2,
      trust: trust('trimmed-mean'),
      timeoutMs: 10_000,
      ...(await signing(0, 2)),
    });
    const data = randn(n, r);
    const digest = await digestVector(data);
    // Signed for step 1, sent as step 2's: the signature does not cover this slot.
    const sig = await (await identity(1)).sign(robustSigningText({ runId: 'robust-test', step: 1, attempt: 0, stage: 0, rank: 1 }, digest));
    await links[1][0]!.sendTensor({
      kind: ROBUST_KIND,
      dtype: 'f32',
      shape: [n],
      data,
      meta: robustMeta({ step: 2, attempt: 0, stage: 0, rank: 1, count: 1, n, digest, sig }),
    });
    const out = await receiving;
    expect(out.excluded).toEqual([{ rank: 1, reason: 'bad signature' }]);
    expect(out.digests[1]).toBeNull();
    expect(out.sigs[1]).toBeNull();
  });

  it('a rank that sends nothing is excluded as missing; a rank with no microbatches contributes nothing', async () => {
    const r = rng(testSeed('robust reduce missing'));
    const n = 50;
    const grads = Array.from({ length: 4 }, () => randn(n, r));
    const out = await run(grads, [2, 0, 2, 2], 6, 'centered-clip', [3], 300);
    for (const k of [0, 1, 2]) {
      expect(out[k]!.excluded).toEqual([{ rank: 3, reason: 'missing' }]);
      expect(out[k]!.digests[3]).toBeNull();
      expect(Buffer.compare(bits(out[k]!.grad), bits(out[0]!.grad))).toBe(0);
    }
    // Ranks 0 and 2 combined (CenteredClip of two vectors: their mean, unclipped at the default radius).
    for (let i = 0; i < n; i++) expect(out[0]!.grad[i]).toBeCloseTo(((grads[0][i] / 2 + grads[2][i] / 2) / 2) * 6, 4);
  });
});
