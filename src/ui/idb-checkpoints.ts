// The tab's CheckpointStore (src/swarm/checkpoints.ts, docs/resilience.md "Checkpoints"): each stage checkpoint is one
// record of bytes (the checkpoint codec's safetensors file) in IndexedDB through idb-keyval. One database per peer id
// (the tab's key slot, src/ui/key-store.ts): two tabs of one browser never see each other's checkpoints, and a
// reloaded tab, which gets its slot and so its id back, finds its own.
//
// The record's key is the checkpoint's ref [runId, stage, step, digest], so list() reads keys only (no tensor bytes).
// A record is written in one IndexedDB transaction (a tab closed mid-write leaves the older ones whole); the ring
// (`keep` newest per run and stage) is trimmed after the write. Keys someone else wrote in another shape are ignored
// by list() and removed by prune(); a record that fails to decode, fails its digest or names another checkpoint than
// its key is deleted when loaded.
import { createStore, del, delMany, get, keys, set, type UseStore } from 'idb-keyval';
import { z } from 'zod';
import type { CheckpointRef, CheckpointStore, StageCheckpoint } from '../swarm/checkpoints';
import { decodeStageCheckpoint, encodeStageCheckpoint } from '../swarm/checkpoint-codec';

/** Bytes of a checkpoint and back; `decode` throws on anything that is not a whole, digest-checked checkpoint. */
export interface CheckpointCodec {
  encode(ck: StageCheckpoint): Uint8Array;
  decode(bytes: Uint8Array): StageCheckpoint;
}

/** The one file format of docs/resilience.md (safetensors, digest-checked on decode). */
export const SAFETENSORS_CODEC: CheckpointCodec = { encode: encodeStageCheckpoint, decode: decodeStageCheckpoint };

/** The IndexedDB database of `peerId`'s checkpoints (exported for tests that damage a record on purpose). */
export const checkpointDbName = (peerId: string): string => `tabswarm-checkpoints/${peerId}`;
export const CHECKPOINT_OBJECT_STORE = 'checkpoints';

const keySchema = z.tuple([z.string().min(1).max(64), z.number().int().nonnegative(), z.number().int().nonnegative(), z.string().min(1).max(64)]);
type RecordKey = z.infer<typeof keySchema>;

const keyOf = (r: CheckpointRef): RecordKey => [r.runId, r.stage, r.step, r.digest];
const refOf = ([runId, stage, step, digest]: RecordKey): CheckpointRef => ({ runId, stage, step, digest });

export class IdbCheckpointStore implements CheckpointStore {
  private readonly db: UseStore;
  /** Every operation runs after the previous one settled (the contract: concurrent calls are serialized). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly peerId: string,
    /** Called with what went wrong when a damaged record is deleted (the page logs it). */
    private readonly onDamaged: (ref: CheckpointRef, why: string) => void = () => undefined,
    private readonly codec: CheckpointCodec = SAFETENSORS_CODEC,
  ) {
    if (!peerId) throw new Error('IdbCheckpointStore: empty peer id');
    this.db = createStore(checkpointDbName(peerId), CHECKPOINT_OBJECT_STORE);
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.queue.then(op, op);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Every well-formed key of this store; other keys are left to prune(). */
  private async refs(): Promise<CheckpointRef[]> {
    const out: CheckpointRef[] = [];
    for (const k of await keys(this.db)) {
      const r = keySchema.safeParse(k);
      if (r.success) out.push(refOf(r.data));
    }
    return out.sort((a, b) => b.step - a.step || a.stage - b.stage || a.runId.localeCompare(b.runId));
  }

  save(ck: StageCheckpoint, keep: number): Promise<void> {
    return this.serial(async () => {
      const ref: CheckpointRef = { runId: ck.runId, stage: ck.stage, step: ck.step, digest: ck.digest };
      keySchema.parse(keyOf(ref));
      // Encoded before the transaction opens: IndexedDB transactions must not wait on other work.
      await set(keyOf(ref), this.codec.encode(ck), this.db);
      // The ring: this (run, stage)'s newest `keep` steps; an older record of the same step (another digest) goes too.
      const mine = (await this.refs()).filter((r) => r.runId === ck.runId && r.stage === ck.stage);
      const steps = [...new Set(mine.map((r) => r.step))].slice(0, Math.max(1, keep));
      const drop = mine.filter((r) => !steps.includes(r.step) || (r.step === ck.step && r.digest !== ck.digest));
      if (drop.length) await delMany(drop.map(keyOf), this.db);
    });
  }

  list(): Promise<CheckpointRef[]> {
    return this.serial(() => this.refs());
  }

  load(want: Omit<CheckpointRef, 'digest'>): Promise<StageCheckpoint | null> {
    return this.serial(async () => {
      const ref = (await this.refs()).find((r) => r.runId === want.runId && r.stage === want.stage && r.step === want.step);
      if (!ref) return null;
      const bytes: unknown = await get(keyOf(ref), this.db);
      let why: string;
      if (bytes instanceof Uint8Array) {
        try {
          const ck = this.codec.decode(bytes);
          if (ck.runId === ref.runId && ck.stage === ref.stage && ck.step === ref.step && ck.digest === ref.digest) return ck;
          why = `the record holds ${ck.runId} stage ${ck.stage} step ${ck.step} digest ${ck.digest}`;
        } catch (e) {
          why = (e as Error).message;
        }
      } else why = 'the record is not bytes';
      await del(keyOf(ref), this.db);
      this.onDamaged(ref, why);
      return null;
    });
  }

  prune(keepRunId: string): Promise<void> {
    return this.serial(async () => {
      const drop = (await keys(this.db)).filter((k) => {
        const r = keySchema.safeParse(k);
        return !r.success || r.data[0] !== keepRunId;
      });
      if (drop.length) await delMany(drop, this.db);
    });
  }
}
