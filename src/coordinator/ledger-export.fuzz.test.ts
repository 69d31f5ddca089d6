// Fuzz of the ledger verifier: 10,000 seeded mutations of a real signed export (bytes flipped, inserted, deleted,
// truncated; fields re-valued and re-serialized canonically as a forger would). Every one is refused with a clear
// error, none throws, and the untouched export still verifies afterwards.
import { describe, expect, it } from 'vitest';
import { freshSeed, rng } from '../../tests/support/random';
import { ephemeralIdentity } from '../net/identity';
import { Ledger } from './ledger';
import { canonicalJson, exportLedger, verifyLedger } from './ledger-export';
import { buildRun } from './run-builder';

const N = 10_000;
const ALPHABET = '{}[]":,0123456789abcdefABCDEF-_ .\\nulltruefalse\u00e9\u0000';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Replaces one random leaf (or adds / drops a key, or swaps two array items) of the parsed document. */
function mutateValue(doc: Json, rand: () => number): void {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  let node: Json = doc;
  for (let depth = 0; depth < 6; depth++) {
    if (node === null || typeof node !== 'object') return;
    const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) return;
    const k = pick(keys);
    const child: Json = Array.isArray(node) ? node[k as number] : node[k as string];
    const last = rand() < 0.35 || child === null || typeof child !== 'object';
    if (!last) {
      node = child;
      continue;
    }
    const r = rand();
    const values: Json[] = [null, true, 0, -1, 1.5, 2 ** 60, '', '0', '01', 'x'.repeat(100), [], {}, String(Math.floor(rand() * 1e12))];
    if (Array.isArray(node)) {
      if (r < 0.3 && node.length > 1) {
        const j = Math.floor(rand() * node.length);
        [node[k as number], node[j]] = [node[j], node[k as number]];
      } else if (r < 0.5) node.splice(k as number, 1);
      else if (r < 0.6) node.push(structuredClone(child));
      else node[k as number] = pick(values);
    } else {
      if (r < 0.2) delete node[k as string];
      else if (r < 0.3) node[`${k}x`] = pick(values);
      else if (typeof child === 'string' && child.length > 0 && r < 0.7) {
        const i = Math.floor(rand() * child.length);
        node[k as string] = child.slice(0, i) + pick([...'0123456789abcdef']) + child.slice(i + 1);
      } else node[k as string] = pick(values);
    }
    return;
  }
}

/** canonicalJson's form, but any number (a forger is not bound to integers). */
function sortedJson(x: Json): string {
  if (typeof x === 'number') return JSON.stringify(x);
  if (x === null || typeof x !== 'object') return canonicalJson(x);
  if (Array.isArray(x)) return `[${x.map(sortedJson).join(',')}]`;
  return `{${Object.keys(x)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${sortedJson(x[k])}`)
    .join(',')}}`;
}

function mutateText(text: string, rand: () => number): string {
  const i = Math.floor(rand() * text.length);
  const ch = ALPHABET[Math.floor(rand() * ALPHABET.length)];
  switch (Math.floor(rand() * 5)) {
    case 0:
      return text.slice(0, i) + ch + text.slice(i + 1);
    case 1:
      return text.slice(0, i) + ch + text.slice(i);
    case 2:
      return text.slice(0, i) + text.slice(i + 1);
    case 3:
      return text.slice(0, i);
    default:
      return ` ${text}`;
  }
}

describe('verifyLedger fuzz', () => {
  it(`refuses ${N} seeded mutations of a signed export with a clear error, never throwing`, async () => {
    const run = buildRun({ steps: 5, microbatches: 4, 'batch-size': 2, 'block-size': 8, 'run-id': 'fuzz' }, 20);
    const coord = await ephemeralIdentity();
    const members = await Promise.all([ephemeralIdentity(), ephemeralIdentity(), ephemeralIdentity()]);
    const keys = new Map(members.map((m) => [m.id, m.publicKey]));
    const ledger = new Ledger({ run, keyOf: (id) => (id === members[2].id ? null : keys.get(id)) });
    for (let step = 0; step < 3; step++)
      ledger.work({
        step,
        entries: members.map((m, i) => ({ peerId: m.id, stage: i % 2, forward: 2, backward: 2, validations: i, recomputed: 2 * i })),
      });
    ledger.evicted({ peerId: members[1].id, reason: 'fuzz', step: 3 });
    const text = await exportLedger(ledger, coord);
    expect((await verifyLedger(text, coord.fingerprint)).ok).toBe(true);

    const rand = rng(freshSeed());
    const reasons = new Map<string, number>();
    let tested = 0;
    for (let n = 0; n < N; n++) {
      let bad: string;
      if (rand() < 0.5) bad = mutateText(text, rand);
      else {
        const doc = JSON.parse(text) as Json;
        mutateValue(doc, rand);
        bad = `${sortedJson(doc)}\n`;
      }
      if (bad === text || bad === text.slice(0, -1)) continue; // a mutation that changed nothing
      const v = await verifyLedger(bad, coord.fingerprint);
      tested++;
      if (v.ok) throw new Error(`mutation #${n} verified: ${bad}`);
      expect(v.error.length).toBeGreaterThan(8);
      const kind = v.error.replace(/[:(].*$/, '').trim();
      reasons.set(kind, (reasons.get(kind) ?? 0) + 1);
    }
    expect(tested).toBeGreaterThan(N * 0.95);
    // Both the form checks and the signature were exercised.
    expect([...reasons.keys()].some((r) => r.startsWith('bad signature'))).toBe(true);
    expect([...reasons.keys()].some((r) => r.startsWith('not JSON'))).toBe(true);
    expect([...reasons.keys()].some((r) => r.startsWith('not a tabswarm ledger export'))).toBe(true);
    expect((await verifyLedger(text, coord.fingerprint)).ok).toBe(true);
  }, 60_000);
});
