// The page's side of src/worker/tokens-worker.ts: one short-lived worker per call (a join needs the tokens once),
// terminated when the answer (or an error) is back.
import * as Comlink from 'comlink';
import type { RunConfig } from '../protocol/run-config';
import type { TokensWorkerApi } from '../worker/tokens-worker';

export async function tokensInWorker(run: RunConfig, base: string = location.href): Promise<Uint32Array> {
  const w = new Worker(new URL('../worker/tokens-worker.ts', import.meta.url), { type: 'module', name: 'tabswarm-tokens' });
  const api = Comlink.wrap<TokensWorkerApi>(w);
  try {
    return await api.tokens(run, base);
  } finally {
    api[Comlink.releaseProxy]();
    w.terminate();
  }
}
