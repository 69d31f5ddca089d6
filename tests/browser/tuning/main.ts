// Test page: runs the tuning worker (a fresh Worker, so a fresh in-memory table, per call) and can overwrite the
// stored record, for the driver in tests/browser/tuning-cache.test.ts.
import * as Comlink from 'comlink';
import { createStore, set } from 'idb-keyval';
import type { MatmulShape } from '../../../src/gpu/autotune';
import type { TuneOutcome, TuneWorkerApi } from './worker';

declare global {
  interface Window {
    runTune: (shapes: MatmulShape[]) => Promise<TuneOutcome>;
    storeTuning: (key: string, value: unknown) => Promise<void>;
  }
}

window.runTune = async (shapes) => {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  try {
    return await Comlink.wrap<TuneWorkerApi>(worker).tune(shapes);
  } finally {
    worker.terminate();
  }
};

// The same database and object store as src/worker/idb-tuning-store.ts.
window.storeTuning = (key, value) => set(key, value, createStore('tabswarm-tuning', 'matmul'));
