// Which peer holds which stage checkpoint of the run (docs/resilience.md "Stage loss", "Custody"): from each peer's
// `peer-info.checkpoints` (what it announced when it joined) and its `checkpoint-saved` reports since. The
// coordinator keeps one of these (`Coordinator.holdings`); a lost stage is restored from what its live peers hold
// (src/coordinator/restore-plan.ts), and the coordinator's saved run (src/coordinator/run-state.ts) persists it
// (entries() / restore()). The newest `keep` per (peer, stage) are kept, as the peers' own stores do.
import type { CheckpointRef } from '../protocol/messages';

export interface HoldingsOptions {
  /** Refs of other runs are ignored (absent: all kept). */
  runId?: string;
  /** Per (peer, stage): the newest `keep` (run.checkpoint.keep; absent: all). */
  keep?: number;
}

export class Holdings {
  private readonly byPeer = new Map<string, CheckpointRef[]>();
  private readonly runId: string | undefined;
  private readonly keep: number;

  constructor(opts: HoldingsOptions = {}) {
    this.runId = opts.runId;
    this.keep = opts.keep ?? Number.POSITIVE_INFINITY;
  }

  /** What a peer announced (peer-info.checkpoints): replaces what it held before. Other runs' refs are ignored. */
  announce(peer: string, refs: readonly CheckpointRef[]): void {
    this.byPeer.delete(peer);
    for (const r of refs) this.add(peer, r);
  }

  /** A checkpoint-saved report (or a custody copy stored). Returns whether it is this run's. */
  add(peer: string, ref: CheckpointRef): boolean {
    if (this.runId !== undefined && ref.runId !== this.runId) return false;
    const list = (this.byPeer.get(peer) ?? []).filter((r) => !(r.stage === ref.stage && r.step === ref.step));
    list.push({ runId: ref.runId, stage: ref.stage, step: ref.step, digest: ref.digest });
    // Newest first; the peer's store keeps `keep` per stage, and so do we.
    list.sort((a, b) => a.stage - b.stage || b.step - a.step);
    const perStage = new Map<number, number>();
    const kept = list.filter((r) => {
      const n = (perStage.get(r.stage) ?? 0) + 1;
      perStage.set(r.stage, n);
      return n <= this.keep;
    });
    this.byPeer.set(peer, kept);
    return true;
  }

  /** Forgets one ref (its holder reported another digest when loading it: damaged or not what it claimed). */
  drop(peer: string, stage: number, step: number): void {
    const list = this.byPeer.get(peer);
    if (list)
      this.byPeer.set(
        peer,
        list.filter((r) => !(r.stage === stage && r.step === step)),
      );
  }

  /** The refs a peer holds (newest first per stage). */
  of(peer: string): readonly CheckpointRef[] {
    return this.byPeer.get(peer) ?? [];
  }

  /** Every holder's refs, for the plan and for the saved run. */
  entries(): [string, CheckpointRef[]][] {
    return [...this.byPeer].map(([p, refs]) => [p, refs.map((r) => ({ ...r }))]);
  }

  /** Loads saved entries (a resumed coordinator). */
  restore(entries: readonly (readonly [string, readonly CheckpointRef[]])[]): void {
    this.byPeer.clear();
    for (const [peer, refs] of entries) for (const r of refs) this.add(peer, r);
  }
}
