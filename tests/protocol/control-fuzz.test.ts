// Fuzzing signed control (src/protocol/signed-control.ts) the way a member of the room can: >= 10,000 seeded
// payloads through what a receiver runs on them — the envelope check src/net does (bounded JSON text), the
// swarm codec's envelope parse, then signature verification and the body's schema. Mutations of real signed
// envelopes (every field, the body's text, the signature, extra fields, wrong types), envelopes signed by the
// right key over random or hostile bodies, and random JSON. Every input must end in a verdict — delivered or
// refused with a reason — without a throw or a hang; a changed envelope must never verify.
import { expect, it } from 'vitest';
import { readControlPayload } from '../../src/net/control-envelope';
import { ephemeralIdentity } from '../../src/net/identity';
import { swarmControl } from '../../src/protocol/control-codec';
import type { ControlMessage } from '../../src/protocol/messages';
import { openSignedControl, signControl, type SignedEnvelope } from '../../src/protocol/signed-control';
import { freshSeed, rng } from '../support/random';

const COUNT = Number(process.env.TABSWARM_FUZZ_MESSAGES ?? 10_000);

const REAL: ControlMessage[] = [
  { type: 'step-apply', step: 3, attempt: 0, scale: 1, lr: 0.003 },
  { type: 'mb-done', step: 1, attempt: 0, mb: 2 },
  { type: 'mb-loss', step: 1, attempt: 0, mb: 2, loss: 4.1 },
  { type: 'shutdown', reason: 'done' },
  { type: 'hello', protocol: 4 },
  { type: 'peer-info', platform: 'node', gpu: true, throughput: 100 },
  { type: 'step-begin', step: 0, attempt: 1, owners: [0, 1], members: [['a', 'b'], ['c']] },
  { type: 'swarm-members', epoch: 2, stages: [['a'], ['b']], speeds: [[1], [1]], joins: [], step: 0 },
  { type: 'grad-sumsq', step: 0, attempt: 0, stage: 1, value: 2.5 },
];

class Fuzz {
  constructor(private readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  str(n: number): string {
    const alphabet = 'abcXYZ019 _-:."\\{}[]\u00e9\u4e2d\ud83d\ude00\u0000\n';
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
  json(depth: number): unknown {
    const k = this.int(depth > 0 ? 8 : 5);
    switch (k) {
      case 0:
        return null;
      case 1:
        return this.pick([0, -1, 1e308, -0, 3.5, 2 ** 53, Number.MAX_SAFE_INTEGER]);
      case 2:
        return this.str(this.int(20));
      case 3:
        return this.r() < 0.5;
      case 4:
        return this.pick(['step-apply', 'mb-done', 'shutdown', 'swarm-assign', '__proto__', 'constructor', '']);
      case 5:
        return Array.from({ length: this.int(4) }, () => this.json(depth - 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = 0; i < this.int(5); i++)
          o[this.pick(['type', 'seq', 'body', 'sig', 'step', 'lr', '__proto__', this.str(4)])] = this.json(depth - 1);
        return o;
      }
    }
  }
  mutateText(s: string): string {
    if (s.length === 0) return this.str(3);
    const i = this.int(s.length);
    switch (this.int(5)) {
      case 0:
        return s.slice(0, i) + s.slice(i + 1);
      case 1:
        return s.slice(0, i) + this.str(1) + s.slice(i);
      case 2:
        return s.slice(0, i) + this.str(1) + s.slice(i + 1);
      case 3:
        return s.slice(0, i);
      default:
        return s + s.slice(0, this.int(8));
    }
  }
  /** One field of a real envelope changed: returns the payload and whether it still equals the original. */
  mutate(env: SignedEnvelope): { payload: unknown; same: boolean } {
    const e: Record<string, unknown> = { ...env };
    switch (this.int(9)) {
      case 0:
        e.seq = this.pick([env.seq + 1, env.seq - 1, 0, -1, 1.5, `${env.seq}`, 2 ** 60, null]);
        break;
      case 1:
        e.body = this.mutateText(env.body);
        break;
      case 2:
        e.sig = this.mutateText(env.sig);
        break;
      case 3:
        e.type = this.pick(['step-apply', 'shutdown', 'swarm-assign', '', 'x'.repeat(65), 7]);
        break;
      case 4:
        e[this.pick(['extra', 'from', 'to'])] = this.json(1);
        break;
      case 5:
        delete e[this.pick(['type', 'seq', 'body', 'sig'])];
        break;
      case 6:
        e.body = JSON.stringify({ ...(JSON.parse(env.body) as object), lr: 100 });
        break;
      case 7:
        e[this.pick(['type', 'seq', 'body', 'sig'])] = this.json(2);
        break;
      default: {
        // A signature byte flipped in place (same length, valid base64url).
        const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        const i = this.int(env.sig.length);
        e.sig = env.sig.slice(0, i) + this.pick([...chars]) + env.sig.slice(i + 1);
      }
    }
    return { payload: e, same: JSON.stringify(e) === JSON.stringify(env) };
  }
}

it(`refuses ${COUNT} fuzzed signed control inputs with a clear reason, never a throw`, async () => {
  const seed = freshSeed();
  const f = new Fuzz(rng(seed));
  const coord = await ephemeralIdentity();
  const scope = { coordinatorFingerprint: coord.fingerprint, room: 'fuzz' };
  const sign = (seq: number, body: string, type: string) => signControl(coord, scope, seq, body, type);
  const valid = await Promise.all(REAL.map((m, i) => sign(1000 + i, JSON.stringify(m), m.type)));
  const verdicts = { delivered: 0, envelope: 0, codec: 0, signature: 0, body: 0 };
  const reasons = new Set<string>();
  const t0 = performance.now();
  for (let n = 0; n < COUNT; n++) {
    let payload: unknown;
    let mustRefuse = true;
    const kind = n % 4;
    if (kind <= 1) {
      const m = f.mutate(f.pick(valid));
      payload = m.payload;
      mustRefuse = !m.same;
    } else if (kind === 2) {
      // The right key over a random or hostile body: the signature holds, the body must still be read safely.
      const body = f.pick([
        () => JSON.stringify(f.json(4)),
        () => '['.repeat(5000) + ']'.repeat(5000),
        () => f.mutateText(JSON.stringify(f.pick(REAL))),
        () => JSON.stringify({ type: 'step-apply', step: -1, attempt: 0, scale: 1, lr: 1 }),
      ])();
      const env = await sign(1 + f.int(1e9), body.slice(0, 16 * 1024), f.pick(['step-apply', 'mb-done', 'shutdown']));
      payload = env;
      mustRefuse = false; // may happen to be a valid message; checked below by its verdict only
    } else payload = f.json(5);
    // What a receiver does: the net envelope (text, bounded), the codec, then signature and body.
    let text: string;
    try {
      text = JSON.stringify(payload) ?? 'null';
    } catch {
      text = 'null';
    }
    const net = readControlPayload(text);
    if (!net.ok) {
      verdicts.envelope++;
      expect(net.error.length).toBeGreaterThan(0);
      continue;
    }
    const env = swarmControl.parse(net.value.payload);
    if (!env.ok) {
      verdicts.codec++;
      expect(env.error).toMatch(/unsigned or malformed control envelope/);
      continue;
    }
    const opened = await openSignedControl(env.value, scope, coord.id, coord.publicKey);
    if (opened.ok) {
      verdicts.delivered++;
      if (mustRefuse) throw new Error(`a changed envelope verified: ${text.slice(0, 300)}`);
      continue;
    }
    if (opened.reason === 'bad-signature') verdicts.signature++;
    else verdicts.body++;
    reasons.add(opened.reason);
    expect(opened.error.length).toBeGreaterThan(0);
  }
  const ms = performance.now() - t0;
  console.log(`control fuzz: ${COUNT} inputs in ${ms.toFixed(0)} ms: ${JSON.stringify(verdicts)}; reasons ${[...reasons].join(', ')}`);
  // Every path was exercised.
  expect(verdicts.envelope + verdicts.codec).toBeGreaterThan(COUNT / 10);
  expect(verdicts.signature).toBeGreaterThan(COUNT / 10);
  expect(verdicts.body).toBeGreaterThan(COUNT / 20);
  expect(reasons).toContain('type-mismatch');
}, 120_000);
