// The run's training tokens, prepared off the page's main thread: fetching and tokenizing a corpus (1 MB of
// tinyshakespeare char by char, or a user's file through GPT-2 BPE) takes hundreds of ms, a long task that froze
// joining tabs. The page asks this worker (src/ui/worker-tokens.ts) and gets the ids back transferred.
import * as Comlink from 'comlink';
import type { RunConfig } from '../protocol/run-config';
import { runTokens } from '../swarm/run-data';

const api = {
  async tokens(run: RunConfig, base: string): Promise<Uint32Array> {
    const t = await runTokens(run, { base });
    return Comlink.transfer(t, [t.buffer as ArrayBuffer]);
  },
};

export type TokensWorkerApi = typeof api;

Comlink.expose(api);
