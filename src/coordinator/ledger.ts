// The contribution ledger (docs/trust.md "Ledger"): credits per contributor identity for verified work, kept by the
// coordinator. It is fed the Coordinator's trust events: `work` (a completed step's verified forward / backward
// microbatches and validation replays, per member), `validation` (a worker's contribution checked), `strike` and
// `evicted`. Credits are FLOPs (src/model/flops.ts): forward and backward microbatches at the stage's per-microbatch
// cost, validation work as the recomputation it ran (each replayed microbatch forward + backward). Exact integers.
//
// An evicted peer keeps the credits of the steps verified before its eviction; nothing from the eviction's step on
// is credited to it (the `work` events carry only verified work, and the ledger refuses a late entry for it).
import type { Emitter, Unsubscribe } from '../net/emitter';
import type { ControlOf } from '../protocol/messages';
import type { RunConfig } from '../protocol/run-config';
import { stageMicrobatchFlops, type MicrobatchFlops } from '../model/flops';
import type { CoordinatorEvents } from './coordinator';
import type { LedgerRow } from './run-view';

export interface LedgerEntry {
  /** The contributor's member id (key-derived once identities are on). */
  id: string;
  /** Its base64url P-256 public key, when the signaling server told it (null: unknown). */
  publicKey: string | null;
  /** FLOPs credited for forward and backward microbatches and for validation replays. */
  forward: bigint;
  backward: bigint;
  validation: bigint;
  /** Microbatches credited: forwards, backwards, and replayed as a validator. */
  forwardMicrobatches: number;
  backwardMicrobatches: number;
  recomputedMicrobatches: number;
  /** Validations it ran (as validator), and its own contributions validators found correct. */
  validations: number;
  validated: number;
  strikes: number;
  /** The step it was evicted at (null: not evicted). */
  evictedAt: number | null;
}

/** An entry as a signed export holds it (FLOPs as decimal strings). */
export type RestoredEntry = Omit<LedgerEntry, 'forward' | 'backward' | 'validation'> & { forward: string; backward: string; validation: string };

/** An entry's credits: forward + backward + validation FLOPs. */
export function creditsOf(e: LedgerEntry): bigint {
  return e.forward + e.backward + e.validation;
}

export interface LedgerOptions {
  run: RunConfig;
  /** A member's public key, if known (SignalingClient.keyOf). */
  keyOf?: (id: string) => string | null | undefined;
  log?: (s: string) => void;
}

export class Ledger {
  private runNow: RunConfig;
  private readonly byId = new Map<string, LedgerEntry>();
  /** Per stage: FLOPs of one microbatch's forward and backward. */
  private perStage: MicrobatchFlops[];
  /** Steps credited so far (the next `work` event must be for step >= this). */
  step = 0;

  constructor(private readonly opts: LedgerOptions) {
    this.runNow = opts.run;
    this.perStage = Ledger.flops(opts.run);
  }

  private static flops(run: RunConfig): MicrobatchFlops[] {
    return run.stages.map((r) => stageMicrobatchFlops(run.model, r, run.B, run.T));
  }

  get run(): RunConfig {
    return this.runNow;
  }

  /** The coordinator planned the run's split (planStages) before step 0: credits follow the planned stages. */
  replan(stages: RunConfig['stages']): void {
    if (this.step > 0 || this.byId.size > 0) throw new Error('ledger: a run is planned before any work is credited');
    this.runNow = { ...this.runNow, stages };
    this.perStage = Ledger.flops(this.runNow);
  }

  private log(s: string): void {
    this.opts.log?.(`[ledger] ${s}`);
  }

  private entry(id: string): LedgerEntry {
    let e = this.byId.get(id);
    if (!e) {
      e = {
        id,
        publicKey: null,
        forward: 0n,
        backward: 0n,
        validation: 0n,
        forwardMicrobatches: 0,
        backwardMicrobatches: 0,
        recomputedMicrobatches: 0,
        validations: 0,
        validated: 0,
        strikes: 0,
        evictedAt: null,
      };
      this.byId.set(id, e);
    }
    if (e.publicKey === null) e.publicKey = this.opts.keyOf?.(id) ?? null;
    return e;
  }

  /** FLOPs of one microbatch's forward and backward at `stage`. */
  flopsOf(stage: number): MicrobatchFlops {
    const f = this.perStage[stage];
    if (!f) throw new Error(`no stage ${stage} in run ${this.run.runId}`);
    return f;
  }

  /** Credits a completed step's verified work (once per step). */
  work(ev: CoordinatorEvents['work']): void {
    if (ev.step < this.step) {
      this.log(`step ${ev.step}'s work arrived after step ${this.step - 1}'s: not credited twice`);
      return;
    }
    for (const w of ev.entries) {
      const counts = [w.forward, w.backward, w.validations, w.recomputed ?? 0];
      if (!this.perStage[w.stage] || !counts.every((n) => Number.isSafeInteger(n) && n >= 0)) {
        this.log(`step ${ev.step}: malformed work entry of ${w.peerId} (stage ${w.stage}) not credited`);
        continue;
      }
      const known = this.byId.get(w.peerId);
      if (known && known.evictedAt !== null && ev.step >= known.evictedAt) {
        this.log(`step ${ev.step}: ${w.peerId} was evicted at step ${known.evictedAt}: its work is not credited`);
        continue;
      }
      const f = this.perStage[w.stage];
      const e = this.entry(w.peerId);
      const recomputed = w.recomputed ?? 0;
      e.forward += BigInt(w.forward) * f.forward;
      e.backward += BigInt(w.backward) * f.backward;
      e.validation += BigInt(recomputed) * (f.forward + f.backward);
      e.forwardMicrobatches += w.forward;
      e.backwardMicrobatches += w.backward;
      e.recomputedMicrobatches += recomputed;
      e.validations += w.validations;
    }
    this.step = ev.step + 1;
  }

  /**
   * Continues a ledger exported earlier (a resumed coordinator, src/coordinator/run-state.ts): its entries (FLOPs as
   * decimal strings, as the signed export has them) and its step. Only on a ledger that has credited nothing yet.
   */
  restore(step: number, entries: readonly RestoredEntry[]): void {
    if (this.byId.size > 0 || this.step > 0) throw new Error('a ledger is restored before it credits anything');
    for (const e of entries)
      this.byId.set(e.id, { ...e, forward: BigInt(e.forward), backward: BigInt(e.backward), validation: BigInt(e.validation) });
    this.step = step;
  }

  validation(ev: CoordinatorEvents['validation']): void {
    if (ev.ok) this.entry(ev.worker).validated++;
  }

  strike(ev: CoordinatorEvents['strike']): void {
    const e = this.entry(ev.peerId);
    e.strikes = Math.max(e.strikes, ev.strikes);
  }

  evicted(ev: CoordinatorEvents['evicted']): void {
    const e = this.entry(ev.peerId);
    if (e.evictedAt === null) e.evictedAt = ev.step;
  }

  /** Every contributor, sorted by id. */
  entries(): LedgerEntry[] {
    return [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((e) => ({ ...e }));
  }

  get(id: string): LedgerEntry | undefined {
    const e = this.byId.get(id);
    return e ? { ...e } : undefined;
  }

  /** All contributors' credits. */
  total(): bigint {
    let t = 0n;
    for (const e of this.byId.values()) t += creditsOf(e);
    return t;
  }

  /** Contributors with credits. */
  contributors(): number {
    let n = 0;
    for (const e of this.byId.values()) if (creditsOf(e) > 0n) n++;
    return n;
  }

  /** The `credit` message for member `id` (FLOPs as numbers: a display figure; the signed export is exact). */
  credit(id: string): ControlOf<'credit'> {
    const e = this.byId.get(id);
    return {
      type: 'credit',
      credits: e ? Number(creditsOf(e)) : 0,
      total: Number(this.total()),
      contributors: this.contributors(),
      validated: e?.validated ?? 0,
      strikes: e?.strikes ?? 0,
    };
  }

  /** id -> credits (FLOPs, as numbers), for the run's JSON summary. */
  credits(): Record<string, number> {
    return Object.fromEntries(this.entries().map((e) => [e.id, Number(creditsOf(e))]));
  }
}

/** The ledger as the run view's table rows (credits as numbers: display figures). */
export function ledgerRows(ledger: Ledger): LedgerRow[] {
  const total = ledger.total();
  return ledger.entries().map((e) => {
    const c = creditsOf(e);
    return {
      id: e.id,
      credits: Number(c),
      share: total > 0n ? Number((c * 1_000_000_000n) / total) / 1e9 : 0,
      validated: e.validated,
      strikes: e.strikes,
      evicted: e.evictedAt !== null,
    };
  });
}

/** Feeds `ledger` from a coordinator's events; returns the unsubscribe. */
export function attachLedger(events: Emitter<CoordinatorEvents>, ledger: Ledger): Unsubscribe {
  const offs = [
    events.on('work', (e) => ledger.work(e)),
    events.on('validation', (e) => ledger.validation(e)),
    events.on('strike', (e) => ledger.strike(e)),
    events.on('evicted', (e) => ledger.evicted(e)),
    events.on('plan', (e) => e.ok && ledger.replan(e.stages)),
  ];
  return () => {
    for (const off of offs) off();
  };
}
