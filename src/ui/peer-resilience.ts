// What the contributor tab shows of docs/resilience.md: its stored checkpoints, the run paused (the coordinator's
// `run-state`), waiting for a coordinator that left, and how this tab got its stage state (restored from its own
// IndexedDB checkpoint or copied from a live replica). Pure text and a store wrapper, so swarm-peer-view.ts only
// wires events to them.
import type { CheckpointRef, CheckpointStore } from '../swarm/checkpoints';

/** The run paused by the coordinator (a stage without a live replica), with its reason. */
export interface PausedView {
  reason: string;
  /** The run's step when it paused. */
  step: number;
}

export function pausedLine(p: PausedView | null): string {
  return p === null ? '' : `run paused at step ${p.step}: ${p.reason}`;
}

/** Waiting for the run's coordinator to come back, `leftMs` before this tab gives up (SwarmProgress). */
export function waitingLine(leftMs: number | null): string {
  if (leftMs === null) return '';
  const s = Math.max(0, Math.ceil(leftMs / 1000));
  return `the coordinator left; waiting for it to return (${s} s left, then this tab stops)`;
}

export function checkpointsLine(refs: CheckpointRef[]): string {
  if (refs.length === 0) return 'none';
  const newest = refs[0];
  return `${refs.length} stored · newest: stage ${newest.stage} at step ${newest.step} (${newest.runId})`;
}

/** A note on how this tab's stage state came about. */
export function restoredNote(step: number, digest: string): string {
  return `restored its stage from this tab's checkpoint (IndexedDB) at step ${step}, digest ${digest}`;
}

export function joinedNote(from: string, step: number): string {
  return `copied its stage state from live replica ${from} at step ${step}`;
}

/** `store`, telling `onChange` the refs it holds after every save and prune (the page shows them). */
export function observedStore(store: CheckpointStore, onChange: (refs: CheckpointRef[]) => void): CheckpointStore {
  const changed = async (): Promise<void> => onChange(await store.list());
  return {
    async save(ck, keep) {
      await store.save(ck, keep);
      await changed();
    },
    list: () => store.list(),
    load: (ref) => store.load(ref),
    async prune(runId) {
      await store.prune(runId);
      await changed();
    },
  };
}
