// Live rebalancing (docs/resilience.md "Live rebalancing"). Pure: the coordinator feeds it every completed step's
// members and their `step-done.timing` (compute ms, passes) and asks whether one replica should change stage.
//
// A stage's load at a step is the sum of its replicas' busy ms over its replica count (the time each replica would
// spend if the work were spread evenly); the stage's load is the median of its last `window` samples, so one slow
// step (a pipeline compile, a hiccup of the machine) moves nothing. The bottleneck is the stage with the highest
// load. Moving one replica from a donor stage with R >= 2 replicas to the bottleneck (R' replicas) is predicted to
// make the donor's load x R/(R-1) and the bottleneck's x R'/(R'+1); the move is made when the predicted highest load
// is at least `minGain` below today's on the medians, and the bottleneck was the bottleneck at each step of the window
// (medians alone can pair two unrelated slow steps of two stages). Samples are kept only since the last membership change, and the first step
// of a membership is not one (its newcomers compile their pipelines and copy state, which slows the whole machine):
// after any change (the start, a join, a loss, a move) `window` more steps are measured before the next move, so
// there is at most one move per `window` + 1 steps, never on the numbers of a membership that no longer exists.
//
// The timings also give the coordinator's `speeds` (swarm-members): a peer's tokens/s measured on its current stage
// once known, instead of the join benchmark.

import type { StageTime } from '../protocol/stage-time';

export interface StepTiming {
  /** Compute ms of the attempt on this peer (forward/backward/loss calls, queueing excluded). */
  busyMs: number;
  /** Microbatches it ran (a forward and its backward each). */
  passes: number;
  /** Where the attempt's time went on the peer (src/protocol/stage-time.ts). */
  parts?: StageTime;
}

export interface RebalanceOptions {
  /** Steps per median, and steps measured after a membership change before a move (default 3). */
  window?: number;
  /** Relative drop of the highest stage load a move must promise (default 0.15). */
  minGain?: number;
  /** Steps a moved peer stays where it went before it may move again (default 12: no ping-pong of one peer). */
  restSteps?: number;
}

export interface Move {
  peerId: string;
  from: number;
  to: number;
  /** Stage loads (ms per replica) now, and the highest one predicted after the move. */
  loads: number[];
  predictedMax: number;
  reason: string;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

const sameMembers = (a: readonly (readonly string[])[], b: readonly (readonly string[])[]): boolean =>
  a.length === b.length && a.every((m, s) => m.length === b[s].length && m.every((p, r) => p === b[s][r]));

const usable = (t: StepTiming | undefined): t is StepTiming =>
  !!t && Number.isFinite(t.busyMs) && t.busyMs >= 0 && Number.isInteger(t.passes) && t.passes >= 0;

export class Rebalancer {
  readonly window: number;
  readonly minGain: number;
  readonly restSteps: number;
  /** Steps recorded so far, and the step count at each peer's last move. */
  private recorded = 0;
  private readonly movedAt = new Map<string, number>();
  /** The membership the samples below were measured with. */
  private members: string[][] = [];
  /** Per step since the last membership change: each stage's load (null: a replica did not report a timing). */
  private samples: (number | null)[][] = [];
  /** Per peer: its stage and its last `window` ms per pass there (a peer that changes stage starts over). */
  private readonly perPeer = new Map<string, { stage: number; msPerPass: number[] }>();

  constructor(opts: RebalanceOptions = {}) {
    this.window = Math.max(1, Math.floor(opts.window ?? 3));
    this.minGain = opts.minGain ?? 0.15;
    this.restSteps = opts.restSteps ?? 12;
  }

  /** A completed step: its members per stage (the ones that applied it) and the timings they reported. */
  record(members: readonly (readonly string[])[], timings: ReadonlyMap<string, StepTiming>): void {
    this.recorded++;
    const changed = !sameMembers(members, this.members);
    if (changed) {
      this.members = members.map((m) => [...m]);
      this.samples = [];
    }
    if (!changed)
      this.samples.push(
        members.map((m) => {
          if (m.length === 0) return null;
          let sum = 0;
          for (const p of m) {
            const t = timings.get(p);
            if (!usable(t)) return null;
            sum += t.busyMs;
          }
          return sum / m.length;
        }),
      );
    if (this.samples.length > this.window) this.samples.shift();
    members.forEach((m, stage) => {
      for (const p of m) {
        const t = timings.get(p);
        let h = this.perPeer.get(p);
        if (!h || h.stage !== stage) this.perPeer.set(p, (h = { stage, msPerPass: [] }));
        if (changed || !usable(t) || t.passes === 0) continue;
        h.msPerPass.push(t.busyMs / t.passes);
        if (h.msPerPass.length > this.window) h.msPerPass.shift();
      }
    });
  }

  /** A peer left the run (its measurements go with it). */
  forget(peerId: string): void {
    this.perPeer.delete(peerId);
    this.movedAt.delete(peerId);
  }

  /** Each stage's load (median of the samples since the last membership change), null until `window` samples. */
  loads(): (number | null)[] {
    return this.members.map((_, s) => {
      const xs = this.samples.map((row) => row[s]);
      if (xs.length < this.window || xs.some((x) => x === null)) return null;
      return median(xs as number[]);
    });
  }

  /** A peer's measured ms per pass on `stage` (median of its last samples there), or null. */
  private msPerPass(peerId: string, stage: number): number | null {
    const h = this.perPeer.get(peerId);
    return h && h.stage === stage && h.msPerPass.length > 0 ? median(h.msPerPass) : null;
  }

  /**
   * The move to make now, or null (a move returned counts as made: its peer rests `restSteps` steps).
   * The donor's replica is its fastest one not moved in the last `restSteps` steps. `current`: the live membership (a move is decided only on the membership that
   * was measured); `localSteps`: the run syncs by local steps (its lanes are fixed by the smallest stage: no moves).
   */
  decide(current: readonly (readonly string[])[], localSteps: boolean): Move | null {
    if (localSteps || !sameMembers(current, this.members)) return null;
    const got = this.loads();
    if (got.length < 2 || got.some((l) => l === null || !Number.isFinite(l))) return null;
    const loads = got as number[];
    let to = 0;
    for (let s = 1; s < loads.length; s++) if (loads[s] > loads[to]) to = s;
    const now = loads[to];
    if (!(now > 0)) return null;
    const R = current.map((m) => m.length);
    const resting = (p: string) => this.recorded - (this.movedAt.get(p) ?? Number.NEGATIVE_INFINITY) < this.restSteps;
    let best: { from: number; max: number } | null = null;
    for (let from = 0; from < loads.length; from++) {
      if (from === to || R[from] < 2) continue; // never the only replica of a stage
      if (current[from].every(resting)) continue;
      const after = loads.map((l, s) => (s === from ? (l * R[s]) / (R[s] - 1) : s === to ? (l * R[s]) / (R[s] + 1) : l));
      const max = Math.max(...after);
      if (!best || max < best.max) best = { from, max };
    }
    if (!best || best.max > now * (1 - this.minGain)) return null;
    const { from } = best;
    // The medians may pair two unrelated slow steps of two stages (6 peers on 2 shared cores: another process's burst
    // lands on one stage, then on another): `to` must have been the bottleneck at every step of the window.
    const bottleneckThen = (row: readonly (number | null)[]): boolean => row.every((l) => l !== null && l <= (row[to] ?? 0));
    if (!this.samples.every(bottleneckThen)) return null;
    // The donor's fastest replica (lowest measured ms per pass; unmeasured ones last, then rank order).
    const speedOf = (p: string) => this.msPerPass(p, from) ?? Number.POSITIVE_INFINITY;
    const peerId = current[from].filter((p) => !resting(p)).sort((a, b) => speedOf(a) - speedOf(b))[0];
    this.movedAt.set(peerId, this.recorded);
    const fmt = (x: number) => x.toFixed(0);
    return {
      peerId,
      from,
      to,
      loads,
      predictedMax: best.max,
      reason:
        `stage ${to} is the bottleneck (load ${loads.map(fmt).join('/')} ms per replica over the last ${this.window} steps); ` +
        `one replica from stage ${from} brings the highest load to ${fmt(best.max)} ms (-${((1 - best.max / now) * 100).toFixed(0)}%)`,
    };
  }

  /**
   * Speeds for swarm-members (tokens/s per member): measured on the member's current stage once known (B x T
   * tokens per pass). Within a stage one unit: a replica not measured yet there gets the median of its measured
   * twins; a stage with none measured keeps the join benchmark (`fallback`).
   */
  speeds(stages: readonly (readonly string[])[], fallback: (peerId: string) => number, tokensPerPass: number): number[][] {
    return stages.map((m, s) => {
      const measured = m.map((p) => {
        const ms = this.msPerPass(p, s);
        return ms !== null && ms > 0 ? (tokensPerPass * 1000) / ms : null;
      });
      const known = measured.filter((x): x is number => x !== null);
      if (known.length === 0) return m.map((p) => fallback(p));
      const mid = median(known);
      return measured.map((x) => x ?? mid);
    });
  }
}
