// Re-adoption of a running swarm by a resumed coordinator (docs/resilience.md "Coordinator restart"). The coordinator
// broadcasts `reannounce`; the run's members answer hello + peer-info with `member {runId, stage, step, attempt,
// digest}`. This file decides, from the claims gathered, where the run goes on:
// - the step: the newest step every stage has a claimant at (a claimant of the saved step must hold its stage's
//   committed digest, when the saved run knows it);
// - claimants at that step are adopted as members as they are; the others (behind, ahead, or with another digest)
//   keep their stage and join from a replica at the step (the coordinator's joins path: a state transfer);
// - the first attempt of the step is above every claimed attempt (a StageRuntime ignores a step-begin that is not
//   newer than the one it is in).
// Members of the saved membership that never claim are gone (churn). Pure: the Coordinator feeds it and acts on it.
import type { MemberClaim } from '../protocol/messages';
import type { CheckpointRef } from '../protocol/messages';
import type { RunConfig } from '../protocol/run-config';
import type { StepReport } from './step-report';

/** What a Coordinator resumes from (src/coordinator/run-state.ts SavedRun is one). */
export interface ResumeState {
  run: RunConfig;
  /** Steps completed at the save. */
  step: number;
  epoch: number;
  /** Members per stage at the save. */
  membership: string[][];
  /** Per stage: the params digest its replicas committed to at `step` (null: unknown). */
  digests: (string | null)[];
  holdings: { peer: string; checkpoints: CheckpointRef[] }[];
  reports: StepReport[];
  /** Write-ahead: the report of step `step`, saved before its update went out (null/absent: none in flight). */
  applying?: StepReport | null;
  strikes: { peer: string; strikes: number }[];
  evicted: string[];
}

export interface AdoptionPlan {
  /** The step the run goes on at. */
  step: number;
  /** Its first attempt. */
  attempt: number;
  /** Claimants adopted as members of their stage (peer -> stage). */
  members: Map<string, number>;
  /** Claimants that keep their stage and copy its state from a member at `step` (peer -> stage). */
  joiners: Map<string, number>;
}

export class Adoption {
  private readonly claims = new Map<string, MemberClaim>();
  private readonly expected: Set<string>;
  private readonly back = new Set<string>();

  constructor(
    private readonly o: {
      runId: string;
      stages: number;
      /** Steps completed at the save, and each stage's committed digest then (null: not checked). */
      step: number;
      digests: readonly (string | null)[];
      membership: readonly (readonly string[])[];
    },
  ) {
    this.expected = new Set(o.membership.flat());
  }

  /** Why `claim` cannot be adopted (null: it is taken). */
  claim(peer: string, claim: MemberClaim): string | null {
    if (claim.runId !== this.o.runId) return `its claim is of run ${claim.runId}, not ${this.o.runId}`;
    if (claim.stage >= this.o.stages) return `it claims stage ${claim.stage} of a run of ${this.o.stages} stages`;
    this.claims.set(peer, { ...claim });
    if (this.expected.has(peer)) this.back.add(peer);
    return null;
  }

  /** A claimant that vanished before the plan was made. */
  drop(peer: string): void {
    this.claims.delete(peer);
  }

  /** Every member of the saved membership has claimed (no need to wait for more). */
  allBack(): boolean {
    return this.back.size === this.expected.size;
  }

  /** Members of the saved membership that have not claimed (so far). */
  missing(): string[] {
    return [...this.expected].filter((p) => !this.back.has(p));
  }

  /** Whether a claim at `step` holds the state the saved run says its stage committed to. */
  private current(c: MemberClaim): boolean {
    const want = c.step === this.o.step ? this.o.digests[c.stage] : null;
    return want === null || want === undefined || want === c.digest;
  }

  /**
   * Where the run goes on with the claims so far; null while some stage has no claimant at any common step.
   * `partial` (the wait is over): the step with the most stages claimed (the newest of those) — the stages without a
   * claimant are then lost stages, restored from checkpoints (docs/resilience.md "Stage loss"); null: no claim at all.
   */
  plan(partial = false): AdoptionPlan | null {
    const steps = [...new Set([...this.claims.values()].map((c) => c.step))].sort((a, b) => b - a);
    let best: AdoptionPlan | null = null;
    let bestCovered = 0;
    for (const step of steps) {
      const members = new Map<string, number>();
      for (const [peer, c] of this.claims) if (c.step === step && this.current(c)) members.set(peer, c.stage);
      const covered = new Set(members.values()).size;
      if (covered < this.o.stages && !(partial && covered > bestCovered)) continue;
      const joiners = new Map<string, number>();
      for (const [peer, c] of this.claims) if (!members.has(peer)) joiners.set(peer, c.stage);
      const attempt = Math.max(...[...this.claims.values()].map((c) => c.attempt)) + 1;
      const plan = { step, attempt, members, joiners };
      if (covered === this.o.stages) return plan;
      [best, bestCovered] = [plan, covered];
    }
    return best;
  }
}
