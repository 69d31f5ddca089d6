// The browser's TuningStore (src/gpu/tuning-cache.ts): IndexedDB through idb-keyval, which also works inside a
// dedicated Worker. A database of its own, so its object store never collides with the other idb-keyval stores.
import { createStore, get, set, type UseStore } from 'idb-keyval';
import type { TuningStore } from '../gpu/tuning-cache';

let db: UseStore | null = null;
const store = (): UseStore => (db ??= createStore('tabswarm-tuning', 'matmul'));

export const idbTuningStore: TuningStore = {
  get: (key) => get(key, store()),
  set: (key, value) => set(key, value, store()),
};
