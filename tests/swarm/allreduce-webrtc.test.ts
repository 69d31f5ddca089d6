// Butterfly all-reduce over real node-datachannel WebRTC: four in-process Node peers in a full mesh, connected
// through a real signaling server on an ephemeral loopback port. Run under `unshare -n` in CI.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SignalingServer } from '../../signaling-server/server';
import type { Transport } from '../../src/net/transport';
import { allReduceSum, attachSwarmTransport, type ReduceGroup } from '../../src/swarm/allreduce';
import { nodePeer, startServer } from '../net/helpers';

const R = 4;
const N = 1_000_000;
let server: SignalingServer;
const peers: Awaited<ReturnType<typeof nodePeer>>[] = [];
const groups: ReduceGroup[] = [];

beforeAll(async () => {
  server = await startServer();
  // Six handshakes at once in one process: with other suites loading both cores a libdatachannel handshake was seen
  // to outlast the default 10 s attempt timeout, so this mesh allows each attempt 25 s.
  for (let k = 0; k < R; k++) peers.push(await nodePeer(server, 'ar', `p${k}`, { connectTimeoutMs: 25_000 }));
  const links: (Transport | undefined)[][] = Array.from({ length: R }, () => new Array<Transport | undefined>(R));
  // Incoming links: attach the swarm demultiplexer synchronously, before anything can be delivered.
  const incoming = peers.map(
    (p, k) =>
      new Promise<void>((resolve) => {
        let left = k; // rank k is dialed by every lower rank
        if (left === 0) resolve();
        p.network.onConnection((t) => {
          attachSwarmTransport(t);
          links[k][peers.findIndex((p) => p.signaling.peerId === t.peerId)] = t;
          if (--left === 0) resolve();
        });
      }),
  );
  const dials: Promise<void>[] = [];
  for (let i = 0; i < R; i++) {
    for (let j = i + 1; j < R; j++) {
      dials.push(
        peers[i].network.connect(peers[j].signaling.peerId).then((t) => {
          attachSwarmTransport(t);
          links[i][j] = t;
        }),
      );
    }
  }
  await Promise.all([...dials, ...incoming]);
  for (let k = 0; k < R; k++) groups.push({ rank: k, size: R, links: links[k] });
}, 90_000);

afterAll(async () => {
  for (const p of peers) p.close();
  await server?.close();
});

function data(seed: number): Float32Array {
  const out = new Float32Array(N);
  let s = seed >>> 0;
  for (let i = 0; i < N; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * (1 + (i % 7));
  }
  return out;
}

it(`R=${R} full mesh, ${N} floats: bitwise-identical sums`, async () => {
  const inputs = groups.map((_, k) => data(k + 1));
  const t0 = performance.now();
  const results = await Promise.all(groups.map((g, k) => allReduceSum(g, inputs[k], 'step:0', { timeoutMs: 20_000 })));
  const ms = performance.now() - t0;
  console.log(`all-reduce R=${R} x ${N} floats over WebRTC: ${ms.toFixed(0)} ms`);
  const bytes = results.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength));
  for (const b of bytes) expect(Buffer.compare(b, bytes[0])).toBe(0);
  let bad = -1;
  for (let i = 0; i < N && bad < 0; i++) {
    let ref = 0;
    for (const x of inputs) ref += x[i];
    if (results[0][i] !== Math.fround(ref)) bad = i;
  }
  expect(bad).toBe(-1);
  // A second, concurrent pair of reductions on the same links stays apart.
  const [a, b] = await Promise.all([
    Promise.all(groups.map((g, k) => allReduceSum(g, inputs[k].subarray(0, 1000), 'step:1'))),
    Promise.all(groups.map((g, k) => allReduceSum(g, inputs[(k + 1) % R].subarray(0, 999), 'wte:1'))),
  ]);
  for (const r of a) expect(Buffer.compare(Buffer.from(r.buffer), Buffer.from(a[0].buffer))).toBe(0);
  for (const r of b) expect(Buffer.compare(Buffer.from(r.buffer), Buffer.from(b[0].buffer))).toBe(0);
  expect(a[0][5]).toBe(Math.fround(inputs[0][5] + inputs[1][5] + inputs[2][5] + inputs[3][5]));
}, 30_000);
