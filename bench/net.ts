// Network benchmark: data-channel throughput (MB/s, 64 MiB per run) and small-message round trip, Node <-> Node
// (node-datachannel) and tab <-> tab (headless Chromium), framed (FramedTransport.sendTensor / ping) against raw
// (the same RTCDataChannel API, 256 KiB messages, same backpressure policy) in the same run. Rounds alternate
// raw and framed so load from other processes hits both alike; medians are reported. Target: framed >= 0.8x raw.
//
// WebRTC must only ever touch loopback: when run as root outside a private network namespace, benchNet() re-runs
// itself inside `unshare -n` with only `lo` up (like scripts/test.sh) and reads the results back.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSignalingServer, type SignalingServer } from '../signaling-server/server';
import { DEFAULT_BACKPRESSURE, waitForRoom } from '../src/net/backpressure';
import { PeerNetwork } from '../src/net/peer-network';
import { acceptRaw, dialRaw } from '../src/net/raw-link';
import type { RtcRawChannel } from '../src/net/rtc-channel';
import { nodeRtcFactory, nodeWebSocket } from '../src/net/rtc-node';
import { SignalingClient } from '../src/net/signaling-client';
import type { IncomingTensor } from '../src/net/tensor';
import type { Transport } from '../src/net/transport';

const TOTAL = 64 * 1024 * 1024;
const RAW_MESSAGE = 256 * 1024;
const ROUNDS = 3;
const RTT_SAMPLES = 200;
/** The rooms' coordinator fingerprint: nobody holds that key, and the bench's peers need no coordinator. */
const BENCH_COORDINATOR = '0'.repeat(64);
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

export interface PathResult {
  path: string;
  connectMs: number;
  rawMBps: number[];
  framedMBps: number[];
  rawMedianMBps: number;
  framedMedianMBps: number;
  /** framed / raw, medians; target >= 0.8 */
  ratio: number;
  rawRttMs: { median: number; p90: number };
  framedRttMs: { median: number; p90: number };
}

export interface NetBenchResult {
  total: number;
  rounds: number;
  isolated: boolean;
  results: PathResult[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};
const p90 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.9))];
};
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

function summarize(path: string, connectMs: number, raw: number[], framed: number[], rawRtt: number[], framedRtt: number[]): PathResult {
  const rawMedianMBps = median(raw);
  const framedMedianMBps = median(framed);
  return {
    path,
    connectMs,
    rawMBps: raw,
    framedMBps: framed,
    rawMedianMBps,
    framedMedianMBps,
    ratio: framedMedianMBps / rawMedianMBps,
    rawRttMs: { median: median(rawRtt), p90: p90(rawRtt) },
    framedRttMs: { median: median(framedRtt), p90: p90(framedRtt) },
  };
}

/** The raw baseline has no PeerNetwork retry logic; give it the same second chances (handshake flake, notes). */
async function withRetries<T>(what: string, fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      console.warn(`[bench/net] ${what}: attempt ${i} failed (${(err as Error).message}); retrying`);
    }
  }
}

// ---- Node <-> Node -----------------------------------------------------------------------------------------------

async function rawNodeThroughput(a: RtcRawChannel, b: RtcRawChannel): Promise<number> {
  const msg = new Uint8Array(RAW_MESSAGE).fill(9);
  let got = 0;
  const done = new Promise<void>((resolve) => {
    const off = b.events.on('message', (m) => {
      got += m.byteLength;
      if (got >= TOTAL) {
        off();
        resolve();
      }
    });
  });
  a.setLowWaterMark(DEFAULT_BACKPRESSURE.lowWaterMark);
  const t0 = performance.now();
  for (let sent = 0; sent < TOTAL; sent += RAW_MESSAGE) {
    if (a.bufferedAmount > DEFAULT_BACKPRESSURE.highWaterMark) await waitForRoom(a, DEFAULT_BACKPRESSURE);
    a.send(msg);
  }
  await done;
  return mbps(TOTAL, performance.now() - t0);
}

async function framedNodeThroughput(a: Transport, b: Transport, data: Uint8Array): Promise<number> {
  const got = new Promise<IncomingTensor>((resolve) => {
    const off = b.onTensor((t) => {
      off();
      resolve(t);
    });
  });
  const t0 = performance.now();
  await a.sendTensor({ kind: 'act', dtype: 'u8', shape: [data.byteLength], data });
  await got;
  return mbps(TOTAL, performance.now() - t0);
}

async function rawNodeRtt(a: RtcRawChannel, b: RtcRawChannel, n: number): Promise<number[]> {
  const offEcho = b.events.on('message', (m) => m.byteLength === 1 && b.send(m));
  const out: number[] = [];
  const one = new Uint8Array([1]);
  for (let i = 0; i < n; i++) {
    const back = new Promise<void>((resolve) => {
      const off = a.events.on('message', () => {
        off();
        resolve();
      });
    });
    const t0 = performance.now();
    a.send(one);
    await back;
    out.push(performance.now() - t0);
  }
  offEcho();
  return out;
}

async function framedRtt(t: Transport, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await t.ping());
  return out;
}

async function benchNodeNode(server: SignalingServer): Promise<PathResult> {
  const factory = nodeRtcFactory();
  const join = (room: string) =>
    SignalingClient.connect(server.url, { room, coordinator: BENCH_COORDINATOR, role: 'peer', WebSocket: nodeWebSocket });
  const [r1, r2, f1, f2] = await Promise.all([join('raw'), join('raw'), join('framed'), join('framed')]);
  const [rawB, rawA] = await withRetries('raw node link', () => Promise.all([acceptRaw(r2, factory), dialRaw(r1, factory, r2.peerId)]));
  const n1 = new PeerNetwork(f1, factory);
  const n2 = new PeerNetwork(f2, factory);
  const incoming = new Promise<Transport>((resolve) => n2.onConnection(resolve));
  const c0 = performance.now();
  const fa = await n1.connect(f2.peerId);
  const connectMs = performance.now() - c0;
  const fb = await incoming;

  const data = new Uint8Array(TOTAL).fill(9);
  const raw: number[] = [];
  const framed: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    raw.push(await rawNodeThroughput(rawA, rawB));
    framed.push(await framedNodeThroughput(fa, fb, data));
  }
  await rawNodeRtt(rawA, rawB, 20); // warm-up
  const rawRtt = await rawNodeRtt(rawA, rawB, RTT_SAMPLES);
  await framedRtt(fa, 20);
  const fRtt = await framedRtt(fa, RTT_SAMPLES);

  rawA.close();
  rawB.close();
  n1.close();
  n2.close();
  for (const c of [r1, r2, f1, f2]) c.close();
  return summarize('node <-> node (node-datachannel)', connectMs, raw, framed, rawRtt, fRtt);
}

// ---- tab <-> tab -------------------------------------------------------------------------------------------------

async function benchTabTab(server: SignalingServer): Promise<PathResult> {
  const { launchBrowser, startPageServer } = await import('../tests/browser/harness');
  const [pages, browser] = await Promise.all([startPageServer(), launchBrowser()]);
  try {
    const open = async () => {
      const page = await browser.newPage();
      await page.goto(`${pages.url}/tests/browser/net/index.html`);
      await page.waitForFunction(() => document.title === 'net-ready', undefined, { timeout: 60_000 });
      return page;
    };
    const [a, b] = await Promise.all([open(), open()]);
    const url = server.url;
    const ta = await a.evaluate(([u, fp]) => window.net.join(u, 'tabs', fp), [url, BENCH_COORDINATOR]);
    const tb = await b.evaluate(([u, fp]) => window.net.join(u, 'tabs', fp), [url, BENCH_COORDINATOR]);
    const connectMs = await a.evaluate((id) => window.net.dial(id), tb);
    await b.evaluate((id) => window.net.waitForLink(id), ta);
    await a.evaluate(([u, fp]) => window.net.rawJoin(u, 'tabs-raw', fp), [url, BENCH_COORDINATOR]);
    const tbRaw = await b.evaluate(([u, fp]) => window.net.rawJoin(u, 'tabs-raw', fp), [url, BENCH_COORDINATOR]);
    await withRetries('raw tab link', () =>
      Promise.all([b.evaluate(() => window.net.rawAccept()), a.evaluate((id) => window.net.rawDial(id), tbRaw)]),
    );
    await b.evaluate(([t]) => window.net.rawServe(t), [TOTAL]);

    const raw: number[] = [];
    const framed: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const rawMs = await a.evaluate(([size, count]) => window.net.rawSend(size, count), [RAW_MESSAGE, TOTAL / RAW_MESSAGE]);
      raw.push(mbps(TOTAL, rawMs));
      await b.evaluate((id) => window.net.expectBulk(id, 1), ta);
      const framedMs = await a.evaluate(([size, id]) => window.net.sendBulk(id, size, 1), [TOTAL, tb] as const);
      framed.push(mbps(TOTAL, framedMs));
    }
    await a.evaluate(() => window.net.rawRtt(20));
    const rawRtt = await a.evaluate(([n]) => window.net.rawRtt(n), [RTT_SAMPLES]);
    await a.evaluate((id) => window.net.rtt(id, 20), tb);
    const fRtt = await a.evaluate(([n, id]) => window.net.rtt(id, n), [RTT_SAMPLES, tb] as const);
    await a.evaluate(() => window.net.close());
    await b.evaluate(() => window.net.close());
    return summarize('tab <-> tab (Chromium)', connectMs, raw, framed, rawRtt, fRtt);
  } finally {
    await browser.close();
    await pages.close();
  }
}

// ---- driver ------------------------------------------------------------------------------------------------------

/** Runs the measurements in this process (the caller is responsible for network isolation). */
export async function measureNet(): Promise<NetBenchResult> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  try {
    const results = [await benchNodeNode(server), await benchTabTab(server)];
    return { total: TOTAL, rounds: ROUNDS, isolated: process.env.TABSWARM_NETNS === '1', results };
  } finally {
    await server.close();
  }
}

export function printNet(r: NetBenchResult): void {
  console.log(`\nnetwork: ${r.total / 2 ** 20} MiB per run, ${r.rounds} rounds, medians${r.isolated ? ' (private netns, lo only)' : ''}`);
  console.table(
    r.results.map((p) => ({
      path: p.path,
      'connect ms': p.connectMs.toFixed(0),
      'raw MB/s': p.rawMedianMBps.toFixed(1),
      'framed MB/s': p.framedMedianMBps.toFixed(1),
      'framed/raw': p.ratio.toFixed(2),
      target: '>= 0.80',
      'raw RTT ms (p50/p90)': `${p.rawRttMs.median.toFixed(2)} / ${p.rawRttMs.p90.toFixed(2)}`,
      'framed RTT ms (p50/p90)': `${p.framedRttMs.median.toFixed(2)} / ${p.framedRttMs.p90.toFixed(2)}`,
    })),
  );
}

function canIsolate(): boolean {
  if (process.env.TABSWARM_NETNS === '1' || process.getuid?.() !== 0) return false;
  try {
    execFileSync('unshare', ['-n', '--', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Entry used by bench/run.ts: isolated in a private network namespace when possible; prints a table. */
export async function benchNet(): Promise<NetBenchResult> {
  let result: NetBenchResult;
  if (canIsolate()) {
    const dir = mkdtempSync(join(tmpdir(), 'tabswarm-netbench-'));
    const out = join(dir, 'net.json');
    try {
      const child = spawn(
        'unshare',
        ['-n', '--', 'bash', '-c', 'ip link set lo up && exec node bin/run-ts.mjs bench/net-main.ts --measure-only "$0"', out],
        { cwd: ROOT, stdio: 'inherit', env: { ...process.env, TABSWARM_NETNS: '1' } },
      );
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      if (code !== 0) throw new Error(`isolated network benchmark failed (exit ${code})`);
      result = JSON.parse(readFileSync(out, 'utf8')) as NetBenchResult;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else {
    if (process.env.TABSWARM_NETNS !== '1') {
      console.warn('[bench/net] not root or no unshare: running without a private network namespace (loopback only)');
    }
    result = await measureNet();
  }
  printNet(result);
  return result;
}
