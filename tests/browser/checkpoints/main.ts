// Test page: the tab's CheckpointStore (src/ui/idb-checkpoints.ts) over the real IndexedDB, for the driver in
// tests/browser/idb-checkpoints.test.ts. Checkpoints are made here from a seed (float arrays do not cross
// page.evaluate cheaply); the driver compares digests and a digest of what load() returned.
import { createStore, get, keys, set } from 'idb-keyval';
import { mulberry32 } from '../../../src/model/init';
import type { CheckpointRef, StageCheckpoint } from '../../../src/swarm/checkpoints';
import { layoutOf, stateDigest } from '../../../src/swarm/state-transfer';
import { CHECKPOINT_OBJECT_STORE, checkpointDbName, IdbCheckpointStore } from '../../../src/ui/idb-checkpoints';

export interface At {
  runId: string;
  stage: number;
  step: number;
}

/** What load() gave back: the stored digest and one recomputed from the loaded tensors. */
export interface Loaded {
  digest: string;
  recomputed: string;
  n: number;
  outer: boolean;
}

declare global {
  interface Window {
    ck: {
      save(peerId: string, at: At, keep: number, opts?: { n?: number; seed?: number; outer?: boolean }): Promise<string>;
      list(peerId: string): Promise<CheckpointRef[]>;
      load(peerId: string, at: At): Promise<Loaded | null>;
      prune(peerId: string, runId: string): Promise<void>;
      /** Writes `value` under `key` in peerId's database, bypassing the store (damage on purpose). */
      poke(peerId: string, key: IDBValidKey, value: unknown): Promise<void>;
      rawKeys(peerId: string): Promise<IDBValidKey[]>;
      /** The record's bytes as numbers (null: not bytes). */
      raw(peerId: string, key: IDBValidKey): Promise<number[] | null>;
      /** Flips one bit in the last tensor byte of the record under `key` (a damaged disk, not a changed header). */
      flip(peerId: string, key: IDBValidKey): Promise<void>;
      /** What the stores reported as damaged (and deleted). */
      damaged: string[];
    };
  }
}

const stores = new Map<string, IdbCheckpointStore>();
const damaged: string[] = [];
const storeOf = (peerId: string): IdbCheckpointStore => {
  let s = stores.get(peerId);
  if (!s) {
    s = new IdbCheckpointStore(peerId, (ref, why) => damaged.push(`${peerId} ${ref.runId}/${ref.stage}/${ref.step}: ${why}`));
    stores.set(peerId, s);
  }
  return s;
};

function checkpointOf(at: At, n: number, seed: number, outer: boolean): StageCheckpoint {
  const r = mulberry32(seed);
  const vec = (scale: number) => Float32Array.from({ length: n }, () => (r() - 0.5) * scale);
  const layout = layoutOf({ total: n, slots: [{ spec: { name: 'h.0.w', shape: [n] }, offset: 0, size: n }] });
  const s = {
    layout,
    step: at.step,
    params: vec(1),
    m: vec(0.01),
    v: vec(0.001).map(Math.abs),
    ...(outer ? { outer: { sync: vec(1), mom: vec(0.1), ef: vec(0.01) } } : {}),
  };
  return { runId: at.runId, stage: at.stage, savedAt: 1_750_000_000_000 + at.step, digest: stateDigest(s), ...s };
}

window.ck = {
  damaged,
  async save(peerId, at, keep, opts = {}) {
    const ck = checkpointOf(at, opts.n ?? 64, opts.seed ?? at.step + 1, opts.outer ?? false);
    await storeOf(peerId).save(ck, keep);
    return ck.digest;
  },
  list: (peerId) => storeOf(peerId).list(),
  async load(peerId, at) {
    const ck = await storeOf(peerId).load(at);
    return ck && { digest: ck.digest, recomputed: stateDigest(ck), n: ck.params.length, outer: ck.outer !== undefined };
  },
  prune: (peerId, runId) => storeOf(peerId).prune(runId),
  poke: (peerId, key, value) => set(key, value, createStore(checkpointDbName(peerId), CHECKPOINT_OBJECT_STORE)),
  rawKeys: (peerId) => keys(createStore(checkpointDbName(peerId), CHECKPOINT_OBJECT_STORE)),
  async raw(peerId, key) {
    const v: unknown = await get(key, createStore(checkpointDbName(peerId), CHECKPOINT_OBJECT_STORE));
    return v instanceof Uint8Array ? Array.from(v) : null;
  },
  async flip(peerId, key) {
    const db = createStore(checkpointDbName(peerId), CHECKPOINT_OBJECT_STORE);
    const bytes: unknown = await get(key, db);
    if (!(bytes instanceof Uint8Array)) throw new Error(`no bytes under ${JSON.stringify(key)}`);
    const copy = bytes.slice();
    copy[copy.length - 1] ^= 0x10;
    await set(key, copy, db);
  },
};
