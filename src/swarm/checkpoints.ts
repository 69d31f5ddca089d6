// Stage checkpoints (docs/resilience.md): what a peer saves of its stage and where. The store is per peer identity
// (a directory in Node, src/cli/checkpoint-dir.ts; IndexedDB in a tab, src/ui/idb-checkpoints.ts); this file holds
// the contract both implement. The bytes format (encode/decode, digest-checked) lives in checkpoint-codec.ts.
import type { CheckpointRef } from '../protocol/messages';
import type { OuterShared } from './state-transfer';

export type { CheckpointRef };

/** Local-steps mode: the shared outer state plus this replica's own error-feedback residual. */
export interface OuterCheckpoint extends OuterShared {
  ef: Float32Array;
}

/** One stage's whole state after `step` optimizer steps (a StageState with its run, stage and verified digest). */
export interface StageCheckpoint {
  runId: string;
  stage: number;
  /** Optimizer steps applied (the run continues at this step). */
  step: number;
  /** layoutOf() of the stage's ParamStore: a checkpoint of another layout is refused. */
  layout: string;
  /** stateDigest() of {layout, step, params, m, v, outer}: checked on every load. */
  digest: string;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  outer?: OuterCheckpoint;
  /** Wall clock of the save (ms since the epoch), shown to users. */
  savedAt: number;
}

/** Where a peer keeps its checkpoints. Every method may be called concurrently; implementations serialize. */
export interface CheckpointStore {
  /**
   * Stores `ck` (atomically: a crash mid-write leaves the older checkpoints readable) and then keeps only the newest
   * `keep` checkpoints of (runId, stage).
   */
  save(ck: StageCheckpoint, keep: number): Promise<void>;
  /** Refs of every checkpoint held, newest step first. */
  list(): Promise<CheckpointRef[]>;
  /** The checkpoint `ref` names, digest-checked; null when absent or damaged (a damaged one is deleted). */
  load(ref: Omit<CheckpointRef, 'digest'>): Promise<StageCheckpoint | null>;
  /** Deletes every checkpoint of runs other than `keepRunId` (a new run in the same room). */
  prune(keepRunId: string): Promise<void>;
}
