// Test page: runs the engine inside its Web Worker (comlink) and exposes one entry point to the test driver.
import * as Comlink from 'comlink';
import type { EngineInit, EngineInfo, EngineWorkerApi } from '../../../src/worker/engine-worker';
import type { StepResult } from '../../../src/model/trainer';

declare global {
  interface Window {
    runEngine: (init: EngineInit, steps: number) => Promise<{ info: EngineInfo; results: StepResult[] }>;
  }
}

window.runEngine = async (init, steps) => {
  const worker = new Worker(new URL('../../../src/worker/engine-worker.ts', import.meta.url), { type: 'module' });
  const api = Comlink.wrap<EngineWorkerApi>(worker);
  try {
    const info = await api.start(init);
    const results = await api.train(steps);
    return { info, results };
  } finally {
    worker.terminate();
  }
};
