// The coordinator's side of validators (docs/trust.md "Validators"). After every member's step-trace of an attempt:
// 1. Neighbours must agree on every boundary payload (a sender's sent digest = its receiver's received digest); the
//    step re-runs when they do not. The receiver reports the sender's signature of the digest it got (payloads are
//    signed, src/protocol/digest-signing.ts), which says who lies: a valid signature -> the sender's own trace
//    contradicts what it signed, the sender alone is struck; no valid signature -> the receiver lies about what it
//    got, the receiver alone is struck. No proof either way (the receiver lists nothing for a payload the sender
//    lists, or the sender's key is gone): both are struck, as before signatures — a liar is struck at every
//    disagreement it causes, so it reaches the strike limit no later than any peer it frames.
// 2. A seeded sample (run.seed, step, attempt, stage, rank; rate trust.validationRate) of the contributions is
//    recomputed: each by another replica of the worker's stage (idle replicas first — fewest backward passes this
//    attempt — then rotating), which holds the same weights (the params digest both committed at the last step).
//    A stage with one replica has no validator: its work is checked by trace agreement only.
// 3. A failed validation (mismatch, no upload, inputs that are not what the neighbours sent) goes to a jury: every
//    other replica with the worker's weights replays the same work. The majority decides: the worker found wrong is
//    struck (and the jurors who found it right) and the step re-runs; found right, the validators who failed it are
//    struck (they lied, or their hardware is broken) and the step goes on; a split jury strikes nobody and re-runs.
//    With no third replica both worker and validator are struck and the step re-runs (as for a trace disagreement).
//    A validator that does not answer in time is struck; the contribution then counts as unvalidated.
// Validation work is counted per validator for the step's `work` event (the ledger credits it).
import type { ControlMessage, ControlOf } from '../protocol/messages';
import { trustOf, type RunConfig } from '../protocol/run-config';
import { hashKeys } from '../model/data';
import { validates } from '../swarm/validator';
import type { Disagreement, TraceBook } from './traces';
import { verifySignature } from '../net/identity';
import { payloadSigningText } from '../protocol/digest-signing';

export interface ValidationJob {
  stage: number;
  worker: string;
  validator: string;
  /** A juror's replay of a disputed contribution (a failed validation). */
  second: boolean;
}

export interface ValidationVerdict {
  job: ValidationJob;
  /** null: no answer in time. */
  msg: ControlOf<'validation'> | null;
}

export interface ValidationHost {
  run: RunConfig;
  step: number;
  attempt: number;
  members: string[][];
  book: TraceBook;
  /** Adapter kind per peer (peer-info.adapter). */
  adapters: ReadonlyMap<string, string>;
  /** Params digest each peer committed at its last step-done (absent: none known, e.g. step 0 or a joiner). */
  committed: ReadonlyMap<string, string>;
  rotation: number[];
  isAlive(p: string): boolean;
  /** A member's public key (the control plane's keyOf): the payload signatures in the traces are checked with it. */
  keyOf(p: string): string | undefined;
  send(msg: ControlMessage, to: string): void;
  /** Waits until `done()`; resolves false on timeout; throws when the step must re-run (a member vanished). */
  wait(done: () => boolean, what: string): Promise<boolean>;
  strike(peerId: string, reason: string): void;
  emitValidation(ev: {
    step: number;
    stage: number;
    worker: string;
    validator: string;
    ok: boolean;
    detail: string;
    maxAbsDiff: number | null;
  }): void;
  log(s: string): void;
}

export interface StepCheck {
  /** Why the step must re-run (its gradient cannot be trusted), or null. */
  restart: string | null;
  /** Validations each validator ran to the end and was not found lying about, and the microbatches they replayed. */
  done: Map<string, { validations: number; recomputed: number }>;
}

/** Whether contribution (step, attempt, stage, rank) is sampled: a seeded draw, the same on every replay of a run. */
export function sampled(run: RunConfig, step: number, attempt: number, stage: number, rank: number): boolean {
  const rate = trustOf(run).validationRate;
  return rate > 0 && hashKeys([run.seed, 0x5a11d, step, attempt, stage, rank]) / 0x100000000 < rate;
}

export class StepValidation {
  private readonly answers = new Map<string, ControlOf<'validation'>>();
  private readonly pending = new Map<string, ValidationJob>();

  constructor(private readonly h: ValidationHost) {}

  private static key(validator: string, worker: string): string {
    return `${validator}|${worker}`;
  }

  /**
   * Who lies in a trace disagreement: the receiver's claim comes with the sender's signature of the digest it got.
   * Valid: the sender signed it, and its own trace says otherwise. Not valid: the receiver never got it. A receiver
   * listing nothing, or a sender whose key is gone: no proof either way.
   */
  private async blame(d: Disagreement): Promise<'sender' | 'receiver' | 'both'> {
    const key = this.h.keyOf(d.sender);
    if (d.received === null || !key) return 'both';
    const slot = { runId: this.h.run.runId, step: this.h.step, attempt: this.h.attempt, mb: d.mb, kind: d.kind, to: d.receiver };
    const valid = d.receivedSig !== null && (await verifySignature(key, payloadSigningText(slot, d.received), d.receivedSig));
    return valid ? 'sender' : 'receiver';
  }

  /** A validator's answer: accepted only from the validator of a pending job of this attempt. */
  onVerdict(from: string, msg: ControlOf<'validation'>): boolean {
    if (msg.step !== this.h.step || msg.attempt !== this.h.attempt) return false;
    const k = StepValidation.key(from, msg.worker);
    const job = this.pending.get(k);
    if (!job || job.stage !== msg.stage) return false;
    this.pending.delete(k);
    this.answers.set(k, msg);
    return true;
  }

  async check(): Promise<StepCheck> {
    const done = new Map<string, { validations: number; recomputed: number }>();
    const h = this.h;
    const dis = h.book.disagreements();
    if (dis.length > 0) {
      const struck = new Set<string>();
      for (const d of dis) {
        const blame = await this.blame(d);
        const who =
          blame === 'sender'
            ? 'the sender signed what was received'
            : blame === 'receiver'
              ? 'the receiver has no valid signature for it'
              : 'no proof either way';
        const reason = `trace disagreement on microbatch ${d.mb} ${d.kind} (${d.sender} -> ${d.receiver}): sent ${d.sent ?? 'nothing'}, received ${d.received ?? 'nothing'}; ${who}`;
        h.log(`step ${h.step}: ${reason}`);
        for (const p of blame === 'sender' ? [d.sender] : blame === 'receiver' ? [d.receiver] : [d.sender, d.receiver]) {
          if (struck.has(p)) continue;
          struck.add(p);
          h.strike(p, reason);
        }
      }
      return { restart: `${dis.length} trace disagreement(s)`, done };
    }
    if (!validates(h.run)) return { restart: null, done };
    const jobs: ValidationJob[] = [];
    // The replays handed out this round count as load: without it one idle replica took every job of its stage
    // (the simulator saw 10-15 per attempt, most of a step's time at 1,000 peers).
    const handedOut = new Map<string, number>();
    h.members.forEach((m, stage) =>
      m.forEach((worker, rank) => {
        if (!h.isAlive(worker) || !sampled(h.run, h.step, h.attempt, stage, rank)) return;
        const validator = this.pick(stage, worker, [], handedOut);
        if (!validator) return;
        jobs.push({ stage, worker, validator, second: false });
        handedOut.set(validator, (handedOut.get(validator) ?? 0) + this.work(worker));
      }),
    );
    const first = await this.runJobs(jobs);
    let restart: string | null = null;
    const juries: ValidationJob[] = [];
    const accused = new Map<string, ValidationVerdict>();
    const credit = (v: ValidationVerdict) => {
      const e = done.get(v.job.validator) ?? { validations: 0, recomputed: 0 };
      e.validations++;
      e.recomputed += this.work(v.job.worker);
      done.set(v.job.validator, e);
    };
    for (const v of first) {
      if (!v.msg) {
        h.strike(v.job.validator, `validation of ${v.job.worker} at step ${h.step}: no answer in time`);
        continue;
      }
      if (v.msg.ok) {
        credit(v);
        continue;
      }
      const jurors = this.candidates(v.job.stage, v.job.worker, [v.job.validator]);
      if (jurors.length > 0) {
        accused.set(v.job.worker, v);
        for (const j of jurors) juries.push({ stage: v.job.stage, worker: v.job.worker, validator: j, second: true });
        continue;
      }
      h.strike(v.job.worker, `validation failed (${v.job.validator}): ${v.msg.detail}`);
      h.strike(v.job.validator, `its validation of ${v.job.worker} failed and no third replica can say who is wrong`);
      restart = `validation of ${v.job.worker} failed`;
    }
    if (juries.length > 0) {
      // A dispute goes to a jury: every other replica with the worker's committed weights replays the same work.
      // Honest replays agree bitwise (or within the tolerance), so the majority is right whenever fewer than half
      // of the stage's other replicas lie — also when the accuser and a second validator are both Byzantine.
      const verdicts = await this.runJobs(juries);
      for (const [worker, accusation] of accused) {
        const all = [accusation, ...verdicts.filter((v) => v.job.worker === worker)];
        for (const v of all) if (!v.msg) h.strike(v.job.validator, `jury validation of ${worker} at step ${h.step}: no answer in time`);
        const answered = all.filter((v) => v.msg !== null);
        const fails = answered.filter((v) => v.msg && !v.msg.ok);
        const oks = answered.filter((v) => v.msg?.ok);
        for (const v of answered) credit(v);
        if (fails.length > oks.length) {
          h.strike(
            worker,
            `validation failed (${fails.length} of ${answered.length} replays: ${fails.map((v) => v.job.validator).join(', ')}): ${accusation.msg?.detail ?? ''}`,
          );
          for (const v of oks) h.strike(v.job.validator, `found ${worker}'s work correct at step ${h.step}; the jury's majority did not`);
          restart = `validation of ${worker} failed`;
        } else if (oks.length > fails.length) {
          for (const v of fails)
            h.strike(
              v.job.validator,
              `its validation of ${worker} failed; the jury's majority (${oks.length} of ${answered.length}) found the work correct`,
            );
        } else {
          h.log(`step ${h.step}: the jury on ${worker} is split (${oks.length} ok, ${fails.length} failed); nobody struck, the step re-runs`);
          restart = `the jury on ${worker} is split`;
        }
      }
    }
    return { restart, done };
  }

  /** The live replicas of `stage` other than the worker (and `exclude`) holding the worker's committed weights. */
  private candidates(stage: number, worker: string, exclude: string[]): string[] {
    const h = this.h;
    const want = h.committed.get(worker);
    return (h.members[stage] ?? []).filter((p) => p !== worker && !exclude.includes(p) && h.isAlive(p) && h.committed.get(p) === want);
  }

  /** The backward passes a replay of `worker`'s contribution recomputes. */
  private work(worker: string): number {
    return this.h.book.traces.get(worker)?.backward.length ?? 0;
  }

  /**
   * Another live replica of `stage` with the worker's committed weights: the least loaded (its own backward passes
   * this attempt plus the replays `handedOut` to it already), then rotating.
   */
  private pick(stage: number, worker: string, exclude: string[], handedOut: ReadonlyMap<string, number>): string | null {
    const h = this.h;
    const m = h.members[stage] ?? [];
    const cands = this.candidates(stage, worker, exclude);
    if (cands.length === 0) return null;
    const rot = h.rotation[stage] ?? 0;
    const index = new Map(m.map((p, i) => [p, i]));
    // The least (load, rotated order) in one pass: a sort with indexOf was O(n^2 log n) a pick, and a step of a
    // thousand-member swarm picks hundreds of validators.
    let best = cands[0];
    let bestKey: [number, number] = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
    for (const p of cands) {
      const key: [number, number] = [this.work(p) + (handedOut.get(p) ?? 0), ((index.get(p) ?? -1) - rot + m.length) % m.length];
      if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) [best, bestKey] = [p, key];
    }
    h.rotation[stage] = rot + 1;
    return best;
  }

  private async runJobs(jobs: ValidationJob[]): Promise<ValidationVerdict[]> {
    const h = this.h;
    for (const job of jobs) {
      const msg = this.validateMsg(job);
      this.pending.set(StepValidation.key(job.validator, job.worker), job);
      h.send(msg, job.worker);
      h.send(msg, job.validator);
    }
    const keys = jobs.map((j) => StepValidation.key(j.validator, j.worker));
    await h.wait(() => keys.every((k) => this.answers.has(k) || !h.isAlive(k.split('|')[0])), `step ${h.step} validations`);
    return jobs.map((job, i) => {
      const msg = this.answers.get(keys[i]) ?? null;
      this.pending.delete(keys[i]);
      this.answers.delete(keys[i]);
      if (msg)
        h.emitValidation({
          step: h.step,
          stage: job.stage,
          worker: job.worker,
          validator: job.validator,
          ok: msg.ok,
          detail: msg.detail,
          maxAbsDiff: msg.maxAbsDiff,
        });
      return { job, msg };
    });
  }

  private validateMsg(job: ValidationJob): ControlOf<'validate'> {
    const h = this.h;
    const t = h.book.traces.get(job.worker);
    const kindW = h.adapters.get(job.worker) ?? '';
    const kindV = h.adapters.get(job.validator) ?? '';
    const last = job.stage === h.members.length - 1;
    return {
      type: 'validate',
      step: h.step,
      attempt: h.attempt,
      stage: job.stage,
      worker: job.worker,
      validator: job.validator,
      backward: t?.backward ?? [],
      inputs: h.book.inputsSentTo(job.worker),
      outputs: h.book.outputsOf(job.worker),
      ...(t?.contrib ? { contrib: t.contrib } : {}),
      params: h.committed.get(job.worker) || 'none',
      ...(kindW !== kindV || !kindW ? { values: true } : {}),
      ...(last && t ? { losses: [...t.losses.entries()] } : {}),
    };
  }
}
