// The coordinator's side of the ledger around a run (docs/trust.md "Ledger"): a Ledger fed by the Coordinator's trust
// events and, after each step's verified work is credited, a `credit` to every member, the ledger's rows for the run
// view, and a signed export for whoever persists it (the CLI's --ledger file, the coordinator page's IndexedDB).
// Exports are signed and handed over in step order, one at a time.
import type { Emitter, Unsubscribe } from '../net/emitter';
import type { Identity } from '../net/identity';
import type { ControlOf } from '../protocol/messages';
import type { RunConfig } from '../protocol/run-config';
import type { CoordinatorEvents } from './coordinator';
import { attachLedger, Ledger, ledgerRows } from './ledger';
import { exportLedger, ledgerBody, signLedgerBody, type LedgerDocument } from './ledger-export';
import type { LedgerRow } from './run-view';

export interface LedgerKeeperOptions {
  events: Emitter<CoordinatorEvents>;
  run: RunConfig;
  /** The coordinator's identity: it signs the exports. */
  identity: Identity;
  /** A member's public key (SignalingClient.keyOf). */
  keyOf?: (id: string) => string | null | undefined;
  /** The current membership (Coordinator.members): who gets a `credit` after a step. */
  members: () => string[][];
  send: (msg: ControlOf<'credit'>, to: string) => void;
  onRows?: (rows: LedgerRow[]) => void;
  /** Each step's signed export (persist it); awaited before the next one is handed over. */
  onExport?: (text: string) => void | Promise<void>;
  log?: (s: string) => void;
  /** A resumed run's ledger (its verified export, src/coordinator/run-state.ts): credits continue from it. */
  resume?: { text: string; doc: LedgerDocument } | null;
}

export class LedgerKeeper {
  readonly ledger: Ledger;
  private readonly offs: Unsubscribe[];
  private chain: Promise<void> = Promise.resolve();
  private latestText: string | null = null;

  constructor(private readonly o: LedgerKeeperOptions) {
    this.ledger = new Ledger({ run: o.run, keyOf: o.keyOf, log: o.log });
    if (o.resume) {
      this.ledger.restore(o.resume.doc.step, o.resume.doc.entries);
      this.latestText = o.resume.text;
    }
    // attachLedger subscribes first: the ledger has credited a step's work before afterStep reads it.
    this.offs = [attachLedger(o.events, this.ledger), o.events.on('work', (ev) => this.afterStep(ev.entries.map((e) => e.peerId)))];
  }

  private afterStep(workers: string[]): void {
    const to = new Set([...this.o.members().flat(), ...workers]);
    to.delete(this.o.identity.id);
    for (const id of to) {
      if (this.ledger.get(id)?.evictedAt != null) continue;
      this.o.send(this.ledger.credit(id), id);
    }
    this.o.onRows?.(ledgerRows(this.ledger));
    // The body is taken now: the ledger moves on with the next step while this one is signed and written.
    const body = ledgerBody(this.ledger, this.o.identity, new Date());
    this.chain = this.chain
      .then(async () => {
        const text = await signLedgerBody(body, this.o.identity);
        this.latestText = text;
        await this.o.onExport?.(text);
      })
      .catch((err: unknown) => this.o.log?.(`[ledger] export failed: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** The latest signed export once every export so far was handed over (null: no step credited yet). */
  async latest(): Promise<string | null> {
    await this.chain;
    return this.latestText;
  }

  /** A signed export of the ledger as it is now. */
  export(): Promise<string> {
    return exportLedger(this.ledger, this.o.identity);
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
  }
}
