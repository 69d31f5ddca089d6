// The coordinator's side of stage loss, tab reloads and custody (docs/resilience.md). The Coordinator calls in at a
// few places: every checkpoint-saved and swarm-ready it accepts, a joining peer's stage, the joins of a membership,
// after every completed step, and — instead of ending the run — when a step would start with a stage that has no
// live replica: recover() pauses the run (run-state to everyone), plans (restore-plan.ts) whenever peers arrive or
// report checkpoints, executes the plan as one membership epoch (restores, checkpoint joins, the run rolled back if
// the plan says so) and resumes; without a copy for `restoreWaitMs` it fails saying which stage was lost.
import type { CheckpointRef, ControlMessage, ControlOf } from '../protocol/messages';
import { checkpointOf, type RunConfig } from '../protocol/run-config';
import type { Holdings } from './holdings';
import { planRestore, type RestorePlan } from './restore-plan';
import { CustodyRota } from './custody';
import type { StepReport } from './step-report';

/** One membership epoch as the coordinator announces it (the plan's, or its own with reload restores). */
export interface EpochPlan {
  stages: string[][];
  joins: ControlOf<'swarm-members'>['joins'];
  restores: NonNullable<ControlOf<'swarm-members'>['restores']>;
  /** The digest a peer must report in swarm-ready (restored or joined at a known state). */
  expect: Map<string, string>;
}

export type RestoredPlan = Extract<RestorePlan, { kind: 'restore' }>;

/** What the restorer needs of the Coordinator. */
export interface RestoreHost {
  readonly run: RunConfig;
  readonly holdings: Holdings;
  readonly reports: StepReport[];
  getStep(): number;
  setStep(step: number): void;
  /** Live members per stage (rank order). */
  members(): string[][];
  /** Live peers assigned to a stage, waiting to join (arrival order). */
  joining(): { peer: string; stage: number }[];
  stageOf(peer: string): number | undefined;
  isAlive(peer: string): boolean;
  send(msg: ControlMessage, to?: string): void;
  /** Moves a peer to `stage` (swarm-assign; it joins at the next membership). */
  reassign(peer: string, stage: number): void;
  /** Announces `plan` as the next membership and waits for it: false when a peer failed it (vanished, wrong digest). */
  establish(plan: EpochPlan): Promise<boolean>;
  /** Resolves true when `done()` holds, false at `deadline` (performance.now() ms). Re-checked on every message. */
  waitUntil(done: () => boolean, deadline: number, what: string): Promise<boolean>;
  emitPaused(ev: { step: number; reason: string; stages: number[] }): void;
  emitResumed(ev: { step: number; from: number; stages: number[] }): void;
  log(s: string): void;
}

export interface RestoreOptions {
  /** How long a paused run waits for a copy of a lost stage (default 600 s). */
  restoreWaitMs?: number;
}

export class StageRestorer {
  /** stateDigest of (stage, step) as a member of the stage reported it in checkpoint-saved: what a reload must match. */
  private readonly saved = new Map<string, string>();
  private readonly readyDigest = new Map<string, string | undefined>();
  /** The epoch being established and the peers of it whose restore or join failed (they reported an error). */
  private watching: EpochPlan | null = null;
  private readonly failed = new Set<string>();
  /** Per step: the first attempt a re-run may use (above every attempt used before a rollback). */
  private readonly floors = new Map<number, number>();
  readonly custody: CustodyRota;

  constructor(
    private readonly host: RestoreHost,
    private readonly opts: RestoreOptions = {},
  ) {
    this.custody = new CustodyRota({
      stages: host.run.stages.length,
      every: checkpointOf(host.run).every,
      send: (msg) => {
        host.log(`custody: stage ${msg.stage} step ${msg.step} ${msg.source} -> ${msg.keeper}`);
        for (const to of [msg.source, msg.keeper]) host.send(msg, to);
      },
    });
  }

  /** A checkpoint-saved the coordinator accepted (the Holdings already has it). */
  onSaved(from: string, ref: CheckpointRef): void {
    if (ref.runId !== this.host.run.runId) return;
    const members = this.host.members();
    if (members[ref.stage]?.includes(from)) this.saved.set(`${ref.stage}:${ref.step}`, ref.digest);
    this.custody.onSaved(from, ref, members);
  }

  onReady(from: string, msg: ControlOf<'swarm-ready'>): void {
    this.readyDigest.set(from, msg.digest);
  }

  /** A peer's error while the epoch it restores or joins in is being established: that epoch failed. */
  onStatus(from: string, msg: ControlOf<'status'>): void {
    if (msg.state === 'error' && this.watching?.expect.has(from)) this.failed.add(from);
  }

  /** The epoch `ep` is announced: its restores and joins are watched for errors until the next one. */
  watch(ep: EpochPlan): void {
    this.watching = ep;
    this.failed.clear();
  }

  /** Why the watched epoch failed (a peer reported an error during its restore or join), or null. */
  failure(): string | null {
    const p = [...this.failed][0];
    return p === undefined ? null : `${p} failed its restore or join`;
  }

  /** The peers whose restore or join failed; a failed restore's checkpoint is forgotten (it will not be planned again). */
  takeFailed(): string[] {
    const out = [...this.failed];
    for (const p of out) {
      const r = this.watching?.restores.find((x) => x.peer === p);
      if (r) this.host.holdings.drop(p, r.stage, r.step);
    }
    this.failed.clear();
    return out;
  }

  /** After a completed step (the step counter moved to `step`): custody's turn, if due. */
  afterStep(step: number): void {
    if (step < this.host.run.steps) this.custody.afterStep(step, this.host.members());
  }

  /**
   * The stage a joining peer takes, from the checkpoints it holds: the stage it held before (a reloaded tab), else
   * an empty stage it holds a copy of (the newest). Null: no preference (the usual assignment).
   */
  stageFor(peer: string, before: number | undefined, refs: readonly CheckpointRef[] | undefined): number | null {
    const mine = (refs ?? []).filter((r) => r.runId === this.host.run.runId && r.stage < this.host.run.stages.length);
    // Most joiners hold no checkpoint of this run: no membership scan for them (a swarm of thousands joins).
    if (mine.length === 0) return null;
    if (before !== undefined && mine.some((r) => r.stage === before)) return before;
    const occupied = new Set<number>();
    const members = this.host.members();
    for (const s of this.host.run.stages.keys()) if (members[s].length > 0) occupied.add(s);
    for (const j of this.host.joining()) if (j.peer !== peer) occupied.add(j.stage);
    const empty = mine.filter((r) => !occupied.has(r.stage)).sort((a, b) => b.step - a.step);
    return empty.length ? empty[0].stage : null;
  }

  /**
   * A membership's joins, with reloads that hold a current checkpoint (the run's step, the digest the stage's
   * replicas saved at it) turned into restores: they load it instead of copying the state over the network.
   */
  withReloads(stages: string[][], joins: ControlOf<'swarm-members'>['joins']): EpochPlan {
    const step = this.host.getStep();
    const plan: EpochPlan = { stages, joins: [], restores: [], expect: new Map() };
    for (const j of joins) {
      const digest = this.saved.get(`${j.stage}:${step}`);
      const own = digest ? this.host.holdings.of(j.peer).find((r) => r.stage === j.stage && r.step === step && r.digest === digest) : undefined;
      if (own && digest) {
        plan.restores.push({ peer: j.peer, stage: j.stage, step, digest });
        plan.expect.set(j.peer, digest);
      } else plan.joins.push(j);
    }
    return plan;
  }

  /**
   * After an epoch's swarm-ready: the peers whose reported digest is not the one expected (their restore or join is
   * not the state the plan named). A restore's checkpoint is forgotten: the peer will copy from a live replica.
   */
  misreported(plan: EpochPlan): string[] {
    const bad: string[] = [];
    for (const [peer, want] of plan.expect) {
      if (!this.host.isAlive(peer)) continue;
      const got = this.readyDigest.get(peer);
      if (got === want) continue;
      bad.push(peer);
      const r = plan.restores.find((x) => x.peer === peer);
      if (r) this.host.holdings.drop(peer, r.stage, r.step);
      this.host.log(`${peer} reported state ${got ?? '(none)'} after its ${r ? 'restore' : 'join'}, expected ${want}`);
    }
    return bad;
  }

  /** The first attempt of `step` (0, or above the attempts used before a rollback re-runs it). */
  firstAttempt(step: number): number {
    return this.floors.get(step) ?? 0;
  }

  /**
   * The run cannot start its step: a stage has no live replica. Pauses, plans, restores and resumes; throws when no
   * copy turned up within restoreWaitMs. `attempt`: the attempt about to start; returns the attempt to go on with
   * (above every attempt the step it continues at used before).
   */
  async recover(attempt: number): Promise<number> {
    const h = this.host;
    const from = h.getStep();
    const waitMs = this.opts.restoreWaitMs ?? 600_000;
    const deadline = performance.now() + waitMs;
    const input = () => ({
      step: h.getStep(),
      members: h.members(),
      joining: h.joining(),
      holdings: new Map(
        h.holdings
          .entries()
          .filter(([p]) => h.isAlive(p))
          .map(([p, refs]) => [p, refs.filter((r) => r.runId === h.run.runId)] as const),
      ),
    });
    let plan = planRestore(input());
    const lost = plan.lost;
    const reason = `stage ${lost.join(', ')} has no live replica: restoring it from a checkpoint`;
    h.log(`run paused at step ${from}: ${reason}`);
    h.send({ type: 'run-state', paused: true, reason: reason.slice(0, 1024), step: from }, '*');
    h.emitPaused({ step: from, reason, stages: lost });
    // `attempt` has not begun yet (the step was about to start it): the resumed step may still use it.
    this.floors.set(from, Math.max(this.floors.get(from) ?? 0, attempt));
    for (;;) {
      if (plan.kind === 'wait') {
        h.log(`waiting for a copy: ${plan.reason}`);
        const found = await h.waitUntil(
          () => {
            const m = h.members();
            return m.every((x) => x.length > 0) || planRestore(input()).kind === 'restore';
          },
          deadline,
          'waiting for a copy of a lost stage',
        );
        if (!found) {
          const s = plan.lost.join(', ');
          const waited = `waited ${Math.round(waitMs / 1000)} s`;
          throw new Error(
            /no peer can host/.test(plan.reason)
              ? `stage ${s} has no live replica: a copy of it exists but no peer could host it (${plan.reason}; ${waited}): the run cannot continue`
              : `stage ${s} has no live replica and no copy of it exists (no live or returning peer holds a checkpoint of it; ${waited}): its weights are lost, the run cannot continue`,
          );
        }
        if (h.members().every((x) => x.length > 0)) break;
        plan = planRestore(input());
        continue;
      }
      if (await this.execute(plan)) break;
      if (h.members().every((x) => x.length > 0)) break;
      plan = planRestore(input());
    }
    const step = h.getStep();
    h.log(`run resumed at step ${step}${step < from ? ` (rolled back from step ${from})` : ''}`);
    h.send({ type: 'run-state', paused: false, reason: step < from ? `rolled back to step ${step}` : 'restored', step }, '*');
    h.emitResumed({ step, from, stages: lost });
    return this.firstAttempt(step);
  }

  /** One plan as one membership epoch; true when every peer of it reported ready with the expected state. */
  private async execute(plan: RestoredPlan): Promise<boolean> {
    const h = this.host;
    h.log(
      `restore plan at step ${plan.step}: ${plan.stages.map((m, s) => `s${s}=[${m.join(',')}]`).join(' ')} restores ${plan.restores.map((r) => `${r.peer}:s${r.stage}@${r.step}`).join(',') || '-'} joins ${plan.joins.map((j) => `${j.peer}<-${j.source}${j.checkpoint !== undefined ? `@${j.checkpoint}` : ''}`).join(',') || '-'}`,
    );
    for (const a of plan.assign) if (h.stageOf(a.peer) !== a.stage) h.reassign(a.peer, a.stage);
    if (plan.step < h.getStep()) this.rollback(plan.step);
    const expect = new Map<string, string>();
    for (const r of plan.restores) expect.set(r.peer, r.digest);
    for (const j of plan.joins) {
      const d = plan.digests[j.stage];
      if (d) expect.set(j.peer, d);
    }
    return h.establish({ stages: plan.stages, joins: plan.joins, restores: plan.restores, expect });
  }

  /** The run goes back to step k: the reports of steps >= k are dropped (re-run steps replace them). */
  private rollback(k: number): void {
    const h = this.host;
    for (const r of h.reports) if (r.step >= k) this.floors.set(r.step, Math.max(this.floors.get(r.step) ?? 0, r.attempts));
    const i = h.reports.findIndex((r) => r.step >= k);
    if (i >= 0) h.reports.splice(i);
    h.log(`rolling the run back from step ${h.getStep()} to step ${k}`);
    h.setStep(k);
  }
}
