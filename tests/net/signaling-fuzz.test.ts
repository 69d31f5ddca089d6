// Fuzzing the signaling server from outside, the way issue 7 found it falling: >= 10,000 seeded random and mutated
// messages (nesting to 100,000 levels, strings up to and over the caps, binary frames, invalid UTF-8, messages
// before join, in other rooms, wrongly addressed, and valid-looking mutations of real messages) from several
// attacker connections, while three good clients keep relaying. The server runs in its own process
// (fixtures/fuzz-server.ts), so a crash is that process exiting and its heap can be measured after a full GC.
//
// Seeded: TABSWARM_FUZZ_SEED (or TABSWARM_TEST_SEED, mixed in as every test's seed is) picks other inputs; TABSWARM_FUZZ_MESSAGES changes the count.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { afterAll, expect, it, onTestFailed } from 'vitest';
import { join } from './helpers';
import { rng, seedOverride } from '../support/random';

const SEED = (process.env.TABSWARM_FUZZ_SEED !== undefined ? Number(process.env.TABSWARM_FUZZ_SEED) : 0x7ab5 ^ seedOverride()) >>> 0;
const MESSAGES = Number(process.env.TABSWARM_FUZZ_MESSAGES ?? 10_000);
const ATTACKERS = 6;
const WARMUP = 400;
/** Heap growth, after a full GC, that still counts as "back to baseline". */
const HEAP_SLACK = 4 * 1024 * 1024;

type Frame = { data: string | Buffer; binary: boolean; label: string };

class Fuzzer {
  private readonly r: () => number;
  constructor(seed: number) {
    this.r = rng(seed);
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  str(n: number): string {
    const alphabet = 'abcXYZ019 _-:."\\{}[]\u00e9\u4e2d\ud83d\ude00\u0000\n';
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** Real messages of every kind the server and the swarm know, as templates for mutation. */
  real(): unknown {
    const ids = ['g1', 'g2', 'gc', 'x', 'p1-abc', 'coordinator'];
    return this.pick<() => unknown>([
      () => ({ type: 'join', room: this.pick(['good', 'fz', 'other-room']), peerId: this.pick(ids), role: this.pick(['peer', 'coordinator']) }),
      () => ({ type: 'join', room: `fz-${this.int(50)}`, role: 'peer' }),
      () => ({ type: 'signal', to: this.pick(ids), connId: 'c1', data: { kind: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' } }),
      () => ({
        type: 'signal',
        to: this.pick(ids),
        connId: 'c2',
        data: { kind: 'candidate', candidate: 'candidate:1 1 UDP 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 },
      }),
      () => ({ type: 'signal', to: this.pick(ids), connId: 'c3', data: { kind: 'abort', reason: 'x' } }),
      () => ({ type: 'control', msg: { type: 'peer-info', platform: 'node', gpu: true, throughput: 10 } }),
      () => ({ type: 'control', to: '*', msg: { type: 'step-begin', step: 1, attempt: 0, owners: ['g1'], members: [['g1'], ['g2']] } }),
      () => ({
        type: 'control',
        to: this.pick(ids),
        msg: { type: 'swarm-assign', stage: 0, run: { runId: 'r', model: { n_layer: 2 }, stages: [{ layerStart: 0, layerEnd: 2 }] } },
      }),
      () => ({ type: 'control', msg: { type: 'mb-loss', step: 3, attempt: 0, mb: 1, loss: 2.5 } }),
      () => ({ type: 'ping', nonce: this.int(1000) }),
    ])();
  }

  /** A random JSON value, shallow. */
  value(depth = 0): unknown {
    const leaves: (() => unknown)[] = [
      () => null,
      () => this.chance(0.5),
      () => this.pick([0, -1, 1e308, -0, 2 ** 53 + 1, 0.1, 4294967296]),
      () => this.str(this.int(20)),
      () => this.pick(['__proto__', 'constructor', 'prototype', '*', '', 'join', 'control', 'signal', 'ping']),
    ];
    if (depth > 3 || this.chance(0.6)) return this.pick(leaves)();
    if (this.chance(0.5)) return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = 0, n = this.int(4); i < n; i++)
      o[this.pick(['type', 'to', 'msg', 'data', 'room', 'peerId', '__proto__', this.str(3)])] = this.value(depth + 1);
    return o;
  }

  /** Mutates a (small, our own) JSON value: replace a leaf, drop or add a key, wrap it. */
  mutate(v: unknown, depth = 0): unknown {
    if (depth > 0 && this.chance(0.25)) return this.value(2);
    if (Array.isArray(v)) return v.map((x) => (this.chance(0.3) ? this.mutate(x, depth + 1) : x));
    if (v && typeof v === 'object') {
      const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
      const keys = Object.keys(o);
      if (keys.length && this.chance(0.2)) delete o[this.pick(keys)];
      if (this.chance(0.15)) o[this.pick(['extra', '__proto__', 'constructor', 'type', 'to'])] = this.value(1);
      for (const k of Object.keys(o)) if (this.chance(0.3)) o[k] = this.mutate(o[k], depth + 1);
      return this.chance(0.05) ? [o] : o;
    }
    return this.chance(0.5) ? this.value(2) : v;
  }

  deep(): string {
    const depth = this.pick([64, 500, 3000, 10_000, 50_000, 100_000]);
    const shape = this.int(4);
    const open = shape === 1 ? '{"a":'.repeat(depth) : '['.repeat(depth);
    const close = shape === 1 ? '}'.repeat(depth) : ']'.repeat(depth);
    const inner = shape === 1 ? '1' : '';
    if (shape === 2) return `{"type":"control","msg":{"type":"x","body":${open}${close}}}`;
    if (shape === 3) return open; // never closed
    return open + inner + close;
  }

  frame(): Frame {
    const k = this.r();
    if (k < 0.4) {
      let text = JSON.stringify(this.mutate(this.real()));
      if (this.chance(0.2)) {
        const at = this.int(text.length + 1);
        text = this.chance(0.5) ? text.slice(0, at) : text.slice(0, at) + this.str(1 + this.int(3)) + text.slice(at);
      }
      return { data: text, binary: false, label: 'mutated' };
    }
    if (k < 0.5) return { data: JSON.stringify(this.real()), binary: false, label: 'real' };
    if (k < 0.56) return { data: this.deep(), binary: false, label: 'deep' };
    if (k < 0.6) {
      const n = this.pick([4000, 16 * 1024, 64 * 1024 - 40, 64 * 1024 + 40, 200_000, 200_000, 1024 * 1024 + 100]);
      const s = 'x'.repeat(n);
      const text = this.pick([
        JSON.stringify({ type: 'control', msg: { type: 'status', state: 'x', detail: s } }),
        JSON.stringify({ type: 'signal', to: 'g2', connId: 'c', data: { kind: 'offer', sdp: s } }),
        JSON.stringify({ type: 'join', room: s, role: 'peer' }),
        s,
      ]);
      return { data: text, binary: false, label: 'huge' };
    }
    if (k < 0.68) return { data: this.bytes(this.int(2000)), binary: true, label: 'binary' };
    if (k < 0.72) {
      const b = Buffer.concat([
        Buffer.from('{"type":"ping","x":"'),
        this.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80])]),
        Buffer.from('"}'),
      ]);
      return { data: b, binary: false, label: 'invalid-utf8' };
    }
    if (k < 0.82) return { data: JSON.stringify(this.value()), binary: false, label: 'random-json' };
    if (k < 0.9) return { data: this.str(this.int(300)), binary: false, label: 'garbage' };
    // Wrong addressing from inside rooms: join somewhere, then aim at the good room's members.
    return {
      data: JSON.stringify(
        this.pick<unknown>([
          { type: 'signal', to: this.pick(['g1', 'g2', 'gc']), connId: 'evil', data: { kind: 'abort' } },
          { type: 'control', to: this.pick(['g1', 'g2', 'gc', '*']), msg: { type: 'shutdown', reason: 'evil' } },
          { type: 'control', msg: { type: 'step-apply', step: 0, attempt: 0, scale: 1, lr: 1 } },
          { type: 'join', room: 'good', peerId: this.pick(['g1', 'g2', 'gc']), role: this.pick(['peer', 'coordinator']) },
          { type: 'join', room: 'good', role: 'coordinator' },
        ]),
      ),
      binary: false,
      label: 'addressing',
    };
  }
}

/** One attacker: a raw socket that reopens whenever the server closes it, sending frames one after another. */
class Attacker {
  private ws: WebSocket | null = null;
  reconnects = 0;
  constructor(private readonly url: string) {}

  private async socket(): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return this.ws;
    this.ws?.terminate();
    const ws = new WebSocket(this.url);
    ws.on('message', () => undefined); // replies are not the point; they must only not pile up here
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.reconnects++;
    this.ws = ws;
    if (this.reconnects % 2 === 0) ws.send(JSON.stringify({ type: 'join', room: `fz-${this.reconnects % 7}`, role: 'peer' }));
    return ws;
  }

  async send(f: Frame): Promise<void> {
    const ws = await this.socket();
    await new Promise<void>((resolve) => ws.send(f.data, { binary: f.binary }, () => resolve()));
  }

  close(): void {
    this.ws?.terminate();
    this.ws = null;
  }
}

class ServerProcess {
  private readonly lines: string[] = [];
  private readonly waiters: ((line: string) => void)[] = [];
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  stderr = '';

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const w = this.waiters.shift();
      if (w) w(line);
      else this.lines.push(line);
    });
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.on('exit', (code, signal) => (this.exit = { code, signal }));
  }

  next(timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line) as Record<string, unknown>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server process silent for ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}`)), timeoutMs);
      this.waiters.push((l) => {
        clearTimeout(timer);
        resolve(JSON.parse(l) as Record<string, unknown>);
      });
    });
  }

  async heap(): Promise<{ heap: number; stats: { connections: number; rooms: number } }> {
    this.child.stdin.write('heap\n');
    return (await this.next()) as { heap: number; stats: { connections: number; rooms: number } };
  }
}

let server: ServerProcess | null = null;
afterAll(() => {
  server?.child.kill('SIGKILL');
});

it(`survives ${MESSAGES} fuzzed messages while good clients keep relaying (seed ${SEED})`, async () => {
  onTestFailed(() => console.error(`[fuzz] reproduce with TABSWARM_FUZZ_SEED=${SEED}`));
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--expose-gc', 'bin/run-ts.mjs', 'tests/net/fixtures/fuzz-server.ts'], { stdio: ['pipe', 'pipe', 'pipe'] });
  server = new ServerProcess(child);
  const { url } = (await server.next()) as { url: string };

  // Good clients: a coordinator and two peers in room "good".
  const connect = (label: string, role: 'peer' | 'coordinator') => join({ url }, 'good', label, role);
  const gc = await connect('gc', 'coordinator');
  const g1 = await connect('g1', 'peer');
  const g2 = await connect('g2', 'peer');
  const goodErrors: unknown[] = [];
  for (const c of [gc, g1, g2]) c.on('error', (e) => goodErrors.push(e));
  const got = { signals: new Set<string>(), atCoord: new Set<number>(), at1: new Set<number>(), at2: new Set<number>() };
  g2.on('signal', (ev) => ev.from === g1.peerId && got.signals.add(ev.connId));
  gc.on('control', ({ from, msg }) => from === g1.peerId && msg.type === 'good' && got.atCoord.add(Number(msg.i)));
  g1.on('control', ({ from, msg }) => from === gc.peerId && msg.type === 'good' && got.at1.add(Number(msg.i)));
  g2.on('control', ({ from, msg }) => from === gc.peerId && msg.type === 'good' && got.at2.add(Number(msg.i)));
  let sent = 0;
  const relay = setInterval(() => {
    const i = sent++;
    g1.sendSignal(g2.peerId, `ok-${i}`, { kind: 'abort' });
    g1.sendControl({ type: 'good', i });
    gc.sendControl({ type: 'good', i }, '*');
  }, 10);

  const fuzz = new Fuzzer(SEED);
  const counts: Record<string, number> = {};
  async function attack(n: number): Promise<void> {
    const frames = Array.from({ length: n }, () => fuzz.frame());
    for (const f of frames) counts[f.label] = (counts[f.label] ?? 0) + 1;
    const attackers = Array.from({ length: ATTACKERS }, () => new Attacker(url));
    await Promise.all(
      attackers.map(async (a, k) => {
        for (let i = k; i < frames.length; i += ATTACKERS) await a.send(frames[i]);
      }),
    );
    // A last round trip on every attacker connection that is still open: the server still answers it.
    for (const a of attackers) a.close();
    return;
  }

  try {
    await attack(WARMUP); // warms up every code path (zod, ws) so the baseline below is not pre-JIT
    const base = await server.heap();
    await attack(MESSAGES);
    expect(server.exit).toBeNull();

    // Good clients: still served, with every message delivered.
    expect(await g1.ping(5000)).toBeLessThan(5000);
    clearInterval(relay);
    const n = sent;
    await expect.poll(() => [got.signals.size, got.atCoord.size, got.at1.size, got.at2.size], { timeout: 10_000 }).toEqual([n, n, n, n]);
    expect(goodErrors).toEqual([]);
    expect(n).toBeGreaterThan(10);

    // Memory and bookkeeping back to baseline once the attackers are gone.
    await expect.poll(async () => (await server!.heap()).stats, { timeout: 10_000 }).toEqual({ connections: 3, rooms: 1 });
    const end = await server.heap();
    console.log(
      `[fuzz] seed ${SEED}: ${MESSAGES} messages ${JSON.stringify(counts)} in ${Math.round(performance.now() - t0)} ms; heap ${(base.heap / 2 ** 20).toFixed(1)} -> ${(end.heap / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(end.heap - base.heap).toBeLessThan(HEAP_SLACK);
    expect(server.exit).toBeNull();
  } finally {
    clearInterval(relay);
    for (const c of [gc, g1, g2]) c.close();
  }
  server.child.stdin.write('exit\n');
  await new Promise((r) => child.once('exit', r));
  expect(server.exit).toEqual({ code: 0, signal: null });
}, 120_000);
