// State transfer of a stage's weights + AdamW state: memory transports (fast) and real node-datachannel WebRTC
// (two in-process Node peers, real signaling server on an ephemeral loopback port). Run under `unshare -n` in CI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignalingServer } from '../../signaling-server/server';
import { FramedTransport } from '../../src/net/framed-transport';
import { createMemoryChannelPair } from '../../src/net/memory-channel';
import type { Transport } from '../../src/net/transport';
import { allReduceSum, attachSwarmTransport } from '../../src/swarm/allreduce';
import {
  Fnv64,
  floatDigest,
  layoutOf,
  receiveStageState,
  sendStageState,
  stateDigest,
  StateTransferError,
  type StageState,
} from '../../src/swarm/state-transfer';
import { linkedPair, startServer } from '../net/helpers';
import { sameBits } from '../support/bits';

function store(names: [string, number[]][], align = 64) {
  let off = 0;
  const slots = names.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const s = { spec: { name, shape }, offset: off, size };
    off += Math.ceil(size / align) * align;
    return s;
  });
  return { slots, total: off };
}

function randomState(total: number, seed: number, layout: string, step = 7): StageState {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
  const f = (scale: number) => {
    const a = new Float32Array(total);
    for (let i = 0; i < total; i++) a[i] = next() * scale;
    return a;
  };
  return { params: f(0.2), m: f(1e-3), v: f(1e-6).map(Math.abs), step, layout };
}

function memoryPair(): [Transport, Transport] {
  const [ra, rb] = createMemoryChannelPair();
  return [new FramedTransport('b', ra), new FramedTransport('a', rb)];
}

describe('digest and layout', () => {
  it('Fnv64 matches a BigInt reference of FNV-1a-64 over 32-bit words', () => {
    const words = new Uint32Array([0, 1, 0xffffffff, 0x80000000, 0x12345678, 0xdeadbeef, 7]);
    let h = 0xcbf29ce484222325n;
    for (const w of words) h = ((h ^ BigInt(w)) * 0x100000001b3n) & 0xffffffffffffffffn;
    expect(new Fnv64().update(words).hex()).toBe(h.toString(16).padStart(16, '0'));
  });

  it('changes with any bit, -0 vs 0, step and layout', () => {
    const layout = layoutOf(store([['w', [4, 4]]]));
    const s = randomState(64, 1, layout);
    const d = stateDigest(s);
    expect(d).toMatch(/^[0-9a-f]{16}$/);
    expect(stateDigest({ ...s, params: s.params.slice() })).toBe(d);
    const flipped = s.v.slice();
    new Uint32Array(flipped.buffer)[63] ^= 1;
    expect(stateDigest({ ...s, v: flipped })).not.toBe(d);
    expect(stateDigest({ ...s, step: 8 })).not.toBe(d);
    expect(stateDigest({ ...s, layout: layout + ' ' })).not.toBe(d);
    expect(floatDigest(new Float32Array([0]))).not.toBe(floatDigest(new Float32Array([-0])));
    // params and m swapped must differ (parts are kept apart).
    expect(stateDigest({ ...s, params: s.m, m: s.params })).not.toBe(d);
  });

  it('layoutOf records names, offsets, sizes, shapes and the total', () => {
    const l = layoutOf(
      store([
        ['a', [3, 5]],
        ['b', [7]],
      ]),
    );
    expect(JSON.parse(l)).toEqual({
      total: 128,
      slots: [
        ['a', 0, 15, [3, 5]],
        ['b', 64, 7, [7]],
      ],
    });
  });
});

describe('state transfer over memory transports', () => {
  const layout = layoutOf(
    store([
      ['h.0.w', [300, 300]],
      ['h.0.b', [300]],
      ['ln', [17]],
    ]),
  );
  const total = (JSON.parse(layout) as { total: number }).total;

  it('round-trips params, m, v, step and meta bit-identically, even when sent before receive is called', async () => {
    const [a, b] = memoryPair();
    const s = randomState(total, 3, layout, 42);
    await sendStageState(a, s, { stage: 1, runId: 'r1' });
    await new Promise((r) => setTimeout(r, 20));
    const got = await receiveStageState(b, { expectLayout: layout });
    expect(got.step).toBe(42);
    expect(got.layout).toBe(layout);
    expect(got.meta).toEqual({ stage: 1, runId: 'r1' });
    expect(sameBits(got.params, s.params) && sameBits(got.m, s.m) && sameBits(got.v, s.v)).toBe(true);
    expect(got.digest).toBe(stateDigest(s));
    expect(stateDigest(got)).toBe(stateDigest(s));
    a.close();
  });

  it('refuses a mismatched layout, and a following correct transfer still works', async () => {
    const [a, b] = memoryPair();
    const other = layoutOf(
      store([
        ['h.0.w', [300, 300]],
        ['h.0.b', [300]],
        ['ln', [18]],
      ]),
    );
    const wrong = randomState((JSON.parse(other) as { total: number }).total, 4, other);
    const right = randomState(total, 5, layout);
    const first = receiveStageState(b, { expectLayout: layout });
    const sent = sendStageState(a, wrong);
    await expect(first).rejects.toThrow(/layout mismatch \(wrong stage\?\)/);
    await expect(first).rejects.toBeInstanceOf(StateTransferError);
    await sent;
    const p = receiveStageState(b, { expectLayout: layout });
    await sendStageState(a, right);
    const got = await p;
    expect(got.digest).toBe(stateDigest(right));
    a.close();
  });

  it('refuses wrong lengths at the sender and at the receiver', async () => {
    const s = randomState(total, 6, layout);
    const [a, b] = memoryPair();
    await expect(sendStageState(a, { ...s, m: s.m.subarray(1) })).rejects.toThrow(/lengths differ/);
    await expect(sendStageState(a, { ...s, params: s.params.subarray(1), m: s.m.subarray(1), v: s.v.subarray(1) })).rejects.toThrow(
      /layout says \d+ elements, buffers hold/,
    );
    await expect(sendStageState(a, s, { digest: 'x' })).rejects.toThrow(/reserved/);
    // A hand-made transfer whose m part is too short.
    const p = receiveStageState(b);
    const enc = new TextEncoder().encode(layout);
    const meta = { xfer: 'x1', part: 'layout', step: 1, n: total, digest: stateDigest(s) };
    await a.sendTensor({ kind: 'stage-state', dtype: 'u8', shape: [enc.length], data: enc, meta });
    await a.sendTensor({ kind: 'stage-state', dtype: 'f32', shape: [total], data: s.params, meta: { xfer: 'x1', part: 'params' } });
    await a.sendTensor({ kind: 'stage-state', dtype: 'f32', shape: [total - 1], data: s.m.subarray(1), meta: { xfer: 'x1', part: 'm' } });
    await expect(p).rejects.toThrow(new RegExp(`m has shape \\[${total - 1}\\], expected \\[${total}\\]`));
    a.close();
  });

  it('refuses parts whose meta does not parse (no transfer id, unknown part, forged step), naming the problem', async () => {
    const s = randomState(total, 8, layout);
    const enc = new TextEncoder().encode(layout);
    const cases: [Record<string, string | number>, RegExp][] = [
      [{ part: 'layout', step: 1, n: total, digest: stateDigest(s) }, /state head meta: xfer/],
      [{ xfer: 'x', part: 'layout', step: -1, n: total, digest: stateDigest(s) }, /state head meta: step/],
      [{ xfer: 'x', part: 'weights' }, /state part meta: part/],
    ];
    for (const [meta, why] of cases) {
      const [a, b] = memoryPair();
      const p = receiveStageState(b);
      await a.sendTensor({ kind: 'stage-state', dtype: 'u8', shape: [enc.length], data: enc, meta });
      await expect(p).rejects.toThrow(why);
      a.close();
    }
  });

  it('carries the local-steps outer state (θ_sync, outer momentum) when given, inside the digest, and checks it is expected', async () => {
    const s = randomState(total, 9, layout);
    const o = randomState(total, 10, layout);
    const outer = { sync: o.params, mom: o.m };
    const withOuter = { ...s, outer };
    expect(stateDigest(withOuter)).not.toBe(stateDigest(s));
    const flipped = outer.mom.slice();
    new Uint32Array(flipped.buffer)[3] ^= 1;
    expect(stateDigest({ ...s, outer: { ...outer, mom: flipped } })).not.toBe(stateDigest(withOuter));

    const [a, b] = memoryPair();
    const p = receiveStageState(b, { expectLayout: layout, expectOuter: true });
    await sendStageState(a, withOuter, { stage: 0 });
    const got = await p;
    expect(got.digest).toBe(stateDigest(withOuter));
    expect(got.outer?.sync).toEqual(outer.sync);
    expect(got.outer?.mom).toEqual(outer.mom);
    expect(got.meta).toEqual({ stage: 0 });

    // A local-steps receiver refuses a state without the outer parts, a per-step one refuses a state with them.
    const missing = receiveStageState(b, { expectOuter: true });
    await sendStageState(a, s);
    await expect(missing).rejects.toThrow(/a local-steps state without its outer state/);
    const extra = receiveStageState(b, { expectOuter: false });
    await sendStageState(a, withOuter);
    await expect(extra).rejects.toThrow(/an outer state in a per-step run/);
    await expect(sendStageState(a, { ...s, outer: { sync: outer.sync, mom: outer.mom.subarray(1) } })).rejects.toThrow(/outer mom must be/);
    a.close();
  });

  it('refuses a state whose digest does not match', async () => {
    const s = randomState(total, 7, layout);
    const [a, b] = memoryPair();
    const p = receiveStageState(b);
    const enc = new TextEncoder().encode(layout);
    await a.sendTensor({
      kind: 'stage-state',
      dtype: 'u8',
      shape: [enc.length],
      data: enc,
      meta: { xfer: 'x', part: 'layout', step: 7, n: total, digest: stateDigest(s) },
    });
    const corrupt = s.params.slice();
    corrupt[5] += 1;
    for (const [part, data] of [
      ['params', corrupt],
      ['m', s.m],
      ['v', s.v],
    ] as const) {
      await a.sendTensor({ kind: 'stage-state', dtype: 'f32', shape: [total], data, meta: { xfer: 'x', part } });
    }
    await expect(p).rejects.toThrow(/digest mismatch/);
    a.close();
  });

  it('rejects when the link closes or the timeout passes', async () => {
    const [a, b] = memoryPair();
    const p = receiveStageState(b, { timeoutMs: 5000 });
    a.close();
    await expect(p).rejects.toThrow(/link closed \(remote/);
    const [c, d] = memoryPair();
    await expect(receiveStageState(d, { timeoutMs: 100 })).rejects.toThrow(/timed out after 100 ms \(0 of 4 parts/);
    c.close();
  });
});

describe('state transfer over real WebRTC', () => {
  const N = 2_000_000;
  const layout = JSON.stringify({ total: N, slots: [['flat', 0, N, [N]]] });
  let server: SignalingServer;
  let pair: Awaited<ReturnType<typeof linkedPair>>;
  let ab: Transport;
  let ba: Transport;

  beforeAll(async () => {
    server = await startServer();
    pair = await linkedPair(server, 'st', ['live', 'joiner']);
    ({ ab, ba } = pair);
    attachSwarmTransport(ab);
    attachSwarmTransport(ba);
  }, 30_000);
  afterAll(async () => {
    pair?.close();
    await server?.close();
  });

  it(`copies 3 x ${N} floats bit-identically (digest equal), beside all-reduce traffic`, async () => {
    const s = randomState(N, 11, layout, 1234);
    const t0 = performance.now();
    const got = receiveStageState(ba, { expectLayout: layout, timeoutMs: 25_000 });
    // All-reduce traffic on the same link, interleaved, must not disturb the transfer.
    const reduce = Promise.all([
      allReduceSum({ rank: 0, size: 2, links: [undefined, ab] }, new Float32Array([1, 2, 3]), 'beside'),
      allReduceSum({ rank: 1, size: 2, links: [ba, undefined] }, new Float32Array([4, 5, 6]), 'beside'),
    ]);
    await sendStageState(ab, s, { stage: 0 });
    const r = await got;
    const ms = performance.now() - t0;
    console.log(`state transfer 3 x ${N} floats (${((3 * N * 4) / 1e6).toFixed(0)} MB) over WebRTC: ${ms.toFixed(0)} ms`);
    expect(r.digest).toBe(stateDigest(s));
    expect(stateDigest(r)).toBe(stateDigest(s));
    expect(r.step).toBe(1234);
    expect(r.meta).toEqual({ stage: 0 });
    expect(Array.from((await reduce)[1])).toEqual([5, 7, 9]);
  }, 30_000);

  it('refuses a mismatched layout over WebRTC', async () => {
    const small = randomState(1000, 12, JSON.stringify({ total: 1000, slots: [['flat', 0, 1000, [1000]]] }));
    const got = receiveStageState(ba, { expectLayout: layout, timeoutMs: 10_000 });
    await sendStageState(ab, small);
    await expect(got).rejects.toThrow(/layout mismatch/);
  }, 15_000);
});
