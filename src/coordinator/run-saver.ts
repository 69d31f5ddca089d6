// Saves the coordinator's run after every completed step (docs/resilience.md "Coordinator restart"): the Coordinator's
// state taken at its `step` event, the ledger's signed export of that step, encoded by run-state.ts and handed to
// `write` (the CLI: a file written to a temporary name and renamed; the coordinator page: IndexedDB). Writes are
// chained in step order; a failed write is logged, never the run's end.
import type { Unsubscribe } from '../net/emitter';
import type { Coordinator } from './coordinator';
import { encodeSavedRun, RUN_STATE_KIND, RUN_STATE_VERSION } from './run-state';

export interface RunSaverOptions {
  coordinator: Coordinator;
  room: string;
  /** The coordinator key's fingerprint: only that key may resume the run. */
  fingerprint: string;
  /** The ledger's latest signed export once the step's is made (LedgerKeeper.latest). */
  ledger: () => Promise<string | null>;
  write: (text: string) => void | Promise<void>;
  log?: (s: string) => void;
}

export function attachRunSaver(o: RunSaverOptions): { off: Unsubscribe; flushed: () => Promise<void> } {
  let chain: Promise<void> = Promise.resolve();
  const save = (): Promise<void> => {
    // The state now (the next step may start before the ledger's signature is made).
    const state = o.coordinator.saveState();
    const savedAt = new Date().toISOString();
    chain = chain
      .then(async () => {
        const text = await o.ledger();
        const saved = { kind: RUN_STATE_KIND, version: RUN_STATE_VERSION, room: o.room, coordinator: o.fingerprint, run: o.coordinator.run } as const;
        await o.write(encodeSavedRun({ ...saved, ...state, ledger: text === null ? null : { text }, savedAt }));
      })
      .catch((err: unknown) => o.log?.(`[coordinator] saving the run failed: ${err instanceof Error ? err.message : String(err)}`));
    return chain;
  };
  const off = o.coordinator.events.on('step', () => void save());
  // Write-ahead: saved (with the step's report as `applying`) before each step's update goes out, so a coordinator
  // gone between the update and its report's save still has the report of the step its peers applied.
  o.coordinator.onApplying = save;
  return {
    off: () => {
      off();
      if (o.coordinator.onApplying === save) o.coordinator.onApplying = null;
    },
    flushed: () => chain,
  };
}
