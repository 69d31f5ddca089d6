import { describe, expect, it } from 'vitest';
import { ephemeralIdentity, idOfKey } from '../net/identity';
import { Emitter } from '../net/emitter';
import { stageMicrobatchFlops } from '../model/flops';
import type { CoordinatorEvents } from './coordinator';
import { attachLedger, creditsOf, Ledger } from './ledger';
import { canonicalJson, exportLedger, verifyLedger } from './ledger-export';
import { buildRun } from './run-builder';
import { LedgerKeeper } from './ledger-keeper';
import type { ControlOf } from '../protocol/messages';
import type { LedgerRow } from './run-view';

// 4 layers in 2 stages, vocab 20: stage 0 = blocks 0-1, stage 1 = blocks 2-3 + the head.
const run = buildRun({ steps: 5, microbatches: 4, 'batch-size': 2, 'block-size': 8, 'run-id': 'ledger-test' }, 20);
const f0 = stageMicrobatchFlops(run.model, run.stages[0], run.B, run.T);
const f1 = stageMicrobatchFlops(run.model, run.stages[1], run.B, run.T);

function hand(): { ledger: Ledger; events: Emitter<CoordinatorEvents> } {
  const events = new Emitter<CoordinatorEvents>();
  const ledger = new Ledger({ run });
  attachLedger(events, ledger);
  return { ledger, events };
}

describe('Ledger', () => {
  it('credits exactly the verified work: microbatches x their stage FLOPs, validations as the replays they ran', () => {
    expect(run.stages.length).toBe(2);
    const { ledger, events } = hand();
    // Step 0: a, b on stage 0 (2 microbatches each), c on stage 1 (all 4).
    events.emit('work', {
      step: 0,
      entries: [
        { peerId: 'a', stage: 0, forward: 2, backward: 2, validations: 0 },
        { peerId: 'b', stage: 0, forward: 2, backward: 2, validations: 0 },
        { peerId: 'c', stage: 1, forward: 4, backward: 4, validations: 0 },
      ],
    });
    // Step 1: b validated a (replaying its 2 microbatches); a's contribution was right.
    events.emit('validation', { step: 1, stage: 0, worker: 'a', validator: 'b', ok: true, detail: '', maxAbsDiff: 0 });
    events.emit('work', {
      step: 1,
      entries: [
        { peerId: 'a', stage: 0, forward: 2, backward: 2, validations: 0 },
        { peerId: 'b', stage: 0, forward: 2, backward: 2, validations: 1, recomputed: 2 },
        { peerId: 'c', stage: 1, forward: 4, backward: 4, validations: 0 },
      ],
    });
    const a = ledger.get('a');
    const b = ledger.get('b');
    const c = ledger.get('c');
    expect(a && creditsOf(a)).toBe(4n * f0.forward + 4n * f0.backward);
    expect(b && creditsOf(b)).toBe(4n * f0.forward + 4n * f0.backward + 2n * (f0.forward + f0.backward));
    expect(c && creditsOf(c)).toBe(8n * f1.forward + 8n * f1.backward);
    expect(a).toMatchObject({ forwardMicrobatches: 4, backwardMicrobatches: 4, validated: 1, strikes: 0, evictedAt: null });
    expect(b).toMatchObject({ validations: 1, recomputedMicrobatches: 2, validation: 2n * (f0.forward + f0.backward) });
    expect(ledger.total()).toBe(10n * f0.forward + 10n * f0.backward + 8n * f1.forward + 8n * f1.backward);
    expect(ledger.contributors()).toBe(3);
    expect(ledger.step).toBe(2);
    expect(ledger.entries().map((e) => e.id)).toEqual(['a', 'b', 'c']);
    expect(ledger.credit('b')).toEqual({
      type: 'credit',
      credits: Number(creditsOf(b!)),
      total: Number(ledger.total()),
      contributors: 3,
      validated: 0,
      strikes: 0,
    });
    expect(ledger.credits()).toEqual({ a: Number(creditsOf(a!)), b: Number(creditsOf(b!)), c: Number(creditsOf(c!)) });
    // The same step again is not credited twice.
    events.emit('work', { step: 1, entries: [{ peerId: 'a', stage: 0, forward: 2, backward: 2, validations: 0 }] });
    expect(ledger.get('a')?.forwardMicrobatches).toBe(4);
  });

  it('keeps an evicted peer verified credits and credits nothing of it from the eviction step on', () => {
    const { ledger, events } = hand();
    events.emit('work', { step: 0, entries: [{ peerId: 'x', stage: 1, forward: 4, backward: 4, validations: 0 }] });
    events.emit('strike', { peerId: 'x', reason: 'validation failed', strikes: 1, step: 1 });
    events.emit('strike', { peerId: 'x', reason: 'validation failed', strikes: 2, step: 1 });
    events.emit('evicted', { peerId: 'x', reason: '2 strikes', step: 1 });
    events.emit('work', { step: 1, entries: [{ peerId: 'x', stage: 1, forward: 4, backward: 4, validations: 0 }] });
    const x = ledger.get('x');
    expect(x).toMatchObject({ strikes: 2, evictedAt: 1, forwardMicrobatches: 4 });
    expect(x && creditsOf(x)).toBe(4n * (f1.forward + f1.backward));
  });

  it('refuses malformed work entries (a stage the run lacks, negative or fractional counts)', () => {
    const { ledger, events } = hand();
    events.emit('work', {
      step: 0,
      entries: [
        { peerId: 'a', stage: 7, forward: 1, backward: 1, validations: 0 },
        { peerId: 'b', stage: 0, forward: -1, backward: 1, validations: 0 },
        { peerId: 'c', stage: 0, forward: 1.5, backward: 1, validations: 0 },
      ],
    });
    expect(ledger.entries()).toEqual([]);
    expect(ledger.total()).toBe(0n);
  });
});

describe('ledger export', () => {
  async function signed() {
    const coord = await ephemeralIdentity();
    const members = await Promise.all([ephemeralIdentity(), ephemeralIdentity()]);
    const keys = new Map(members.map((m) => [m.id, m.publicKey]));
    const ledger = new Ledger({ run, keyOf: (id) => keys.get(id) });
    ledger.work({
      step: 0,
      entries: [
        { peerId: members[0].id, stage: 0, forward: 4, backward: 4, validations: 0 },
        { peerId: members[1].id, stage: 1, forward: 4, backward: 4, validations: 1, recomputed: 4 },
      ],
    });
    const text = await exportLedger(ledger, coord, new Date(Date.UTC(2026, 0, 2)));
    return { coord, members, ledger, text };
  }

  it('verifies with the embedded key when its fingerprint is the expected one', async () => {
    const { coord, members, ledger, text } = await signed();
    const v = await verifyLedger(text, coord.fingerprint);
    if (!v.ok) throw new Error(v.error);
    expect(v.ledger.run).toBe('ledger-test');
    expect(v.ledger.step).toBe(1);
    expect(v.ledger.coordinator).toEqual({ publicKey: coord.publicKey, fingerprint: coord.fingerprint });
    expect(v.ledger.entries.map((e) => e.id)).toEqual([...members.map((m) => m.id)].sort());
    for (const e of v.ledger.entries) {
      expect(e.publicKey).not.toBeNull();
      expect(await idOfKey(e.publicKey ?? '')).toBe(e.id);
      expect(BigInt(e.credits)).toBe(creditsOf(ledger.get(e.id)!));
    }
    expect(v.ledger.totals).toEqual({ credits: ledger.total().toString(), contributors: 2 });
  });

  /** Re-serializes an edited document in canonical form (keeping the old signature), as a forger would. */
  const edit = (text: string, f: (doc: Record<string, unknown> & { entries: Record<string, unknown>[] }) => void) => {
    const doc = JSON.parse(text) as Record<string, unknown> & { entries: Record<string, unknown>[] };
    f(doc);
    return `${canonicalJson(doc)}\n`;
  };

  it('refuses every edit: a credit, an id, the key, the signature, a reordered entry, an added field', async () => {
    const { coord, text } = await signed();
    const other = await ephemeralIdentity();
    const cases: [string, string, RegExp][] = [
      ['credit', edit(text, (d) => (d.entries[0].forward = String(BigInt(d.entries[0].forward as string) + 1n))), /bad signature|credits/],
      [
        'credit, consistently',
        edit(text, (d) => {
          const e = d.entries[0];
          e.forward = String(BigInt(e.forward as string) * 2n);
          e.credits = String(BigInt(e.forward as string) + BigInt(e.backward as string) + BigInt(e.validation as string));
          const t = d.totals as { credits: string };
          t.credits = String(d.entries.reduce((s, x) => s + BigInt(x.credits as string), 0n));
        }),
        /bad signature/,
      ],
      ['id', edit(text, (d) => (d.entries[0].id = 'f'.repeat(32))), /bad signature/],
      ['member key', edit(text, (d) => (d.entries[1].publicKey = other.publicKey)), /bad signature/],
      [
        'coordinator key',
        edit(text, (d) => ((d.coordinator as { publicKey: string }).publicKey = other.publicKey)),
        /not the fingerprint of its publicKey/,
      ],
      [
        'coordinator key and fingerprint',
        edit(text, (d) => (d.coordinator = { publicKey: other.publicKey, fingerprint: other.fingerprint })),
        /not by the expected/,
      ],
      ['signature', edit(text, (d) => (d.signature = `${(d.signature as string).slice(0, -2)}AA`)), /bad signature/],
      ['reordered entries', edit(text, (d) => d.entries.reverse()), /bad signature/],
      ['added field', edit(text, (d) => (d.note = 'x')), /not a tabswarm ledger export: \(root\)/],
      ['added entry field', edit(text, (d) => (d.entries[0].bonus = '1')), /not a tabswarm ledger export: entries\.0/],
      ['step', edit(text, (d) => (d.step = 2)), /bad signature/],
      ['reformatted', JSON.stringify(JSON.parse(text), null, 2), /not in canonical form/],
      ['truncated', text.slice(0, 100), /not JSON/],
    ];
    for (const [what, bad, why] of cases) {
      expect(bad, what).not.toBe(text);
      const v = await verifyLedger(bad, coord.fingerprint);
      expect(v.ok, what).toBe(false);
      if (!v.ok) expect(v.error, what).toMatch(why);
    }
  });

  it('refuses a ledger signed by another coordinator against the expected fingerprint', async () => {
    const { ledger, coord } = await signed();
    const mallory = await ephemeralIdentity();
    const forged = await exportLedger(ledger, mallory);
    expect((await verifyLedger(forged, mallory.fingerprint)).ok).toBe(true);
    const v = await verifyLedger(forged, coord.fingerprint);
    expect(v).toEqual({ ok: false, error: `signed by coordinator ${mallory.fingerprint}, not by the expected ${coord.fingerprint}` });
    expect(await verifyLedger(forged, 'nope')).toMatchObject({ ok: false, error: /64 lowercase hex/ });
  });
});

describe('LedgerKeeper', () => {
  it('after each step: a credit to every member, the table rows, and a signed export per step, in order', async () => {
    const coord = await ephemeralIdentity();
    const events = new Emitter<CoordinatorEvents>();
    const sent: [ControlOf<'credit'>, string][] = [];
    const rows: LedgerRow[][] = [];
    const exports: string[] = [];
    const keeper = new LedgerKeeper({
      events,
      run,
      identity: coord,
      members: () => [['a', 'b'], ['c']],
      send: (msg, to) => sent.push([msg, to]),
      onRows: (r) => rows.push(r),
      onExport: async (t) => {
        await new Promise((r) => setTimeout(r, 5)); // a slow disk: the next export waits for this one
        exports.push(t);
      },
    });
    for (let step = 0; step < 3; step++)
      events.emit('work', {
        step,
        entries: [
          { peerId: 'a', stage: 0, forward: 4, backward: 4, validations: 0 },
          { peerId: 'c', stage: 1, forward: 4, backward: 4, validations: 0 },
        ],
      });
    expect(sent.map(([, to]) => to)).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
    const a = 12n * (f0.forward + f0.backward);
    const c = 12n * (f1.forward + f1.backward);
    expect(sent[6][0]).toEqual({ type: 'credit', credits: Number(a), total: Number(a + c), contributors: 2, validated: 0, strikes: 0 });
    expect(sent[7][0].credits).toBe(0); // b did no work
    expect(rows[2].map((r) => [r.id, r.credits])).toEqual([
      ['a', Number(a)],
      ['c', Number(c)],
    ]);
    expect(rows[2][0].share).toBeCloseTo(Number(a) / Number(a + c), 9);
    const last = await keeper.latest();
    expect(exports.length).toBe(3);
    expect(last).toBe(exports[2]);
    const steps = [];
    for (const t of exports) {
      const v = await verifyLedger(t, coord.fingerprint);
      if (!v.ok) throw new Error(v.error);
      steps.push(v.ledger.step);
    }
    expect(steps).toEqual([1, 2, 3]);
    keeper.close();
  });
});
