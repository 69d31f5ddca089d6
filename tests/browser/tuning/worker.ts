// Test worker: the tab's persisted matmul tuning (src/gpu/tuning-cache.ts over IndexedDB) on a fresh runtime, the
// way the engine worker does it at start, with small shapes and two variants so SwiftShader tunes in seconds.
import * as Comlink from 'comlink';
import { matmulChoices, type MatmulShape } from '../../../src/gpu/autotune';
import { browserRuntime } from '../../../src/gpu/browser-runtime';
import { adapterIdentity, tuneMatmulCached, tuningKey, type CachedTuneResult } from '../../../src/gpu/tuning-cache';
import { idbTuningStore } from '../../../src/worker/idb-tuning-store';

export interface TuneOutcome {
  result: CachedTuneResult;
  choices: Array<{ shape: string; variant: string }>;
  key: string;
  log: string[];
}

const api = {
  async tune(shapes: MatmulShape[]): Promise<TuneOutcome> {
    const rt = await browserRuntime();
    try {
      const log: string[] = [];
      const result = await tuneMatmulCached(rt, shapes, idbTuningStore, { reps: 1, variants: ['naive', 'tiled'], log: (s) => log.push(s) });
      const choices = matmulChoices(rt).map(({ shape, variant }) => ({ shape, variant }));
      return { result, choices, key: tuningKey(adapterIdentity(rt.handle.report)), log };
    } finally {
      rt.destroy();
    }
  },
};
export type TuneWorkerApi = typeof api;
Comlink.expose(api);
