// Coordinator page (coordinator.html): runs the swarm's coordinator in this tab (src/coordinator/run-lifecycle.ts,
// role 'coordinator' on the signaling server) for a run configured from the URL or the form, renders the run's
// view-model (src/coordinator/run-view.ts: the peers per stage with platform, throughput and state, the loss curve,
// the events) and starts the run. Contributor tabs join with index.html?signal=<same url>&room=<same room>; tabs
// opened before the run wait in the room and announce themselves when the coordinator arrives.
//
// URL parameters (all optional, prefill the form): signal, room, min-peers, autostart=1 (start at load), and every
// run option under its CLI flag's name (src/coordinator/run-builder.ts: stages, steps, microbatches, batch-size,
// n-layer, n-head, n-embd, block-size, lr, min-lr, warmup, seed, ..., compress), with the same defaults as the CLI. Older
// short names are still read: M, B, n_layer, n_embd, n_head, block, minPeers.
import type { Identity } from '../net/identity';
import { tabIdentity } from './key-store';
import { savedRunOf, storeRun } from './run-store';
import type { SavedRun } from '../coordinator/run-state';
import { LitElement, css, html } from 'lit';
import {
  buildRun,
  DEFAULT_ROOM,
  NUMERIC_RUN_OPTIONS,
  TEXT_RUN_OPTIONS,
  readRunOptions,
  RUN_DEFAULTS,
  type NumericRunOption,
  type RunOptionName,
} from '../coordinator/run-builder';
import { CoordinatorRun } from '../coordinator/run-lifecycle';
import { runTokensPerSecond, type PeerView, type RunView } from '../coordinator/run-view';
import { RunViewStore } from '../coordinator/run-view-store';
import { CharTokenizer } from '../model/tokenizer';
import type { RunConfig } from '../protocol/run-config';
import './loss-chart';
import { CORPUS_URL, defaultSignalUrl, layersLabel } from './swarm-params';
import { wireFigures } from './wire-figures';
import { flopsLabel, shareLabel } from './credit-figures';
import { downloadText, lastLedger, storeLedger, type StoredLedger } from './ledger-store';

/** The run options the form shows (the rest come from the URL or the defaults). */
const FORM_OPTIONS = [
  'stages',
  'steps',
  'microbatches',
  'batch-size',
  'n-layer',
  'n-embd',
  'n-head',
  'block-size',
  'lr',
  'seed',
] as const satisfies readonly NumericRunOption[];
type FormOption = (typeof FORM_OPTIONS)[number];

const LABELS: Record<FormOption, string> = {
  stages: 'stages',
  steps: 'steps',
  microbatches: 'microbatches M',
  'batch-size': 'sequences B',
  'n-layer': 'n_layer',
  'n-embd': 'n_embd',
  'n-head': 'n_head',
  'block-size': 'block (T)',
  lr: 'learning rate',
  seed: 'seed',
};

/** Today's URL parameter names (the CLI flags') -> the older ones, still read. */
const OLDER_NAMES: Partial<Record<string, string>> = {
  microbatches: 'M',
  'batch-size': 'B',
  'n-layer': 'n_layer',
  'n-embd': 'n_embd',
  'n-head': 'n_head',
  'block-size': 'block',
  'min-peers': 'minPeers',
};

/** The form's text: signaling URL, room, min peers (empty: one per stage) and the run options by name. */
export interface RunForm {
  signal: string;
  room: string;
  minPeers: string;
  options: Partial<Record<RunOptionName, string>>;
}

/** The coordinator page's state, as `window.tabswarmCoordinator.snapshot()` gives it to tests: the run view. */
export type CoordinatorSnapshot = RunView;

declare global {
  interface Window {
    tabswarmCoordinator?: {
      snapshot(): CoordinatorSnapshot;
      start(): Promise<void>;
      /** The latest signed ledger export (null: none yet). */
      ledger(): string | null;
      /** This page's coordinator key fingerprint (the room is bound to it); null until the key is loaded. */
      fingerprint(): string | null;
    };
  }
}

export function formFromUrl(search: string = location.search): RunForm {
  const q = new URLSearchParams(search);
  const get = (name: string): string | null => {
    const older = OLDER_NAMES[name];
    return q.get(name) ?? (older === undefined ? null : q.get(older));
  };
  const options: Partial<Record<RunOptionName, string>> = {};
  for (const k of FORM_OPTIONS) options[k] = String(RUN_DEFAULTS[k]);
  options.compress = 'none';
  const names: RunOptionName[] = [...NUMERIC_RUN_OPTIONS, ...TEXT_RUN_OPTIONS];
  for (const k of names) {
    const v = get(k);
    if (v !== null && v !== '') options[k] = v;
  }
  return { signal: q.get('signal') || defaultSignalUrl(), room: q.get('room') || DEFAULT_ROOM, minPeers: get('min-peers') ?? '', options };
}

/** The run the form describes (the run builder's defaults for the rest); throws naming a bad field. */
export function runFromForm(f: RunForm, vocab: number): RunConfig {
  return buildRun(
    readRunOptions((name) => f.options[name]),
    vocab,
  );
}

function minPeersOf(f: RunForm, run: RunConfig): number {
  if (f.minPeers.trim() === '') return run.stages.length;
  const n = Number(f.minPeers);
  if (!Number.isInteger(n) || n < 1) throw new Error(`min peers: "${f.minPeers}" is not a positive integer`);
  return n;
}

const busy = (v: RunView) => v.phase === 'connecting' || v.phase === 'waiting' || v.phase === 'training';

export class TabswarmCoordinator extends LitElement {
  static override styles = css`
    :host {
      display: block;
    }
    form {
      display: grid;
      grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr));
      gap: 0.5rem 1rem;
      margin-bottom: 1rem;
    }
    label {
      display: flex;
      flex-direction: column;
      font-size: 0.8rem;
      color: #56607a;
    }
    label.wide {
      grid-column: span 2;
    }
    input {
      font: inherit;
      padding: 0.2rem 0.3rem;
    }
    button {
      font: inherit;
      padding: 0.4rem 1rem;
    }
    table {
      border-collapse: collapse;
      width: 100%;
      margin: 0.5rem 0;
      font-size: 0.9rem;
    }
    th,
    td {
      text-align: left;
      padding: 0.2rem 0.6rem;
      border-bottom: 1px solid #e3e6ef;
    }
    th {
      color: #56607a;
      font-weight: 500;
    }
    h3 {
      margin: 1rem 0 0.3rem;
      font-size: 1rem;
    }
    .err {
      color: #b3261e;
      white-space: pre-wrap;
    }
    .muted {
      color: #56607a;
    }
    details {
      font-size: 0.8rem;
      color: #56607a;
    }
    pre {
      white-space: pre-wrap;
      max-height: 12rem;
      overflow: auto;
    }
  `;

  static override properties = { form: { state: true }, snap: { state: true }, ledger: { state: true }, fingerprint: { state: true } };

  form: RunForm = formFromUrl();
  private readonly store = new RunViewStore();
  snap: RunView = this.store.view;
  /** The latest signed ledger export: this run's, or the last one kept in IndexedDB. */
  ledger: StoredLedger | null = null;
  private session: CoordinatorRun | null = null;
  /** This tab's coordinator key (IndexedDB, src/ui/key-store.ts): the same across reloads, so peers can rejoin. */
  private identity: Promise<Identity> | null = null;
  fingerprint: string | null = null;

  constructor() {
    super();
    this.store.onChange(({ view }) => (this.snap = view));
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.tabswarmCoordinator = {
      snapshot: () => structuredClone(this.snap),
      start: () => this.start(),
      ledger: () => this.ledger?.text ?? null,
      fingerprint: () => this.fingerprint,
    };
    const autostart = new URLSearchParams(location.search).get('autostart') === '1';
    this.identity ??= tabIdentity('coordinator');
    void this.identity.then(
      async (id) => {
        this.fingerprint = id.fingerprint;
        // A reloaded page resumes its room's unfinished run (src/ui/run-store.ts), re-adopting the swarm. Looked up
        // before autostart: a reloaded autostart page would otherwise start a new run and orphan the swarm.
        const saved = await savedRunOf({ room: this.form.room, coordinator: id.fingerprint });
        if (saved) await this.start(saved);
        else if (autostart) await this.start();
      },
      (e: unknown) => this.store.dispatch({ kind: 'failed', error: `no coordinator key: ${(e as Error).message}` }),
    );
    void lastLedger().then((l) => (this.ledger ??= l));
    window.addEventListener('pagehide', () => this.stop());
  }

  async start(resume?: SavedRun): Promise<void> {
    if (busy(this.snap)) return;
    this.store.dispatch({ kind: 'connecting' });
    try {
      const f = this.form;
      const run = resume?.run ?? runFromForm(f, await corpusVocab());
      this.session = await CoordinatorRun.start({
        url: f.signal,
        room: f.room,
        run,
        minPeers: minPeersOf(f, run),
        identity: await (this.identity ??= tabIdentity('coordinator')),
        view: this.store,
        log: (s) => console.log(s),
        resume,
        onRunState: (text) => storeRun(f.room, text).catch((e: unknown) => console.warn(`run not kept in IndexedDB: ${(e as Error).message}`)),
        onLedger: async (text) => {
          this.ledger = { runId: run.runId, text };
          await storeLedger(run.runId, text).catch((e: unknown) => console.warn(`ledger not kept in IndexedDB: ${(e as Error).message}`));
        },
      });
      await this.session.finished();
    } catch (e) {
      // A run that failed is already in the view; this is a failure to start one.
      if (this.snap.phase !== 'error') this.store.dispatch({ kind: 'failed', error: (e as Error).message });
    } finally {
      this.stop();
    }
  }

  private stop(): void {
    this.session?.close();
    this.session = null;
  }

  private field(k: 'signal' | 'room' | 'minPeers' | 'compress' | FormOption, label: string, wide = false) {
    const value = k === 'signal' || k === 'room' || k === 'minPeers' ? this.form[k] : (this.form.options[k] ?? '');
    const set = (s: string) => {
      if (k === 'signal' || k === 'room' || k === 'minPeers') this.form = { ...this.form, [k]: s };
      else this.form = { ...this.form, options: { ...this.form.options, [k]: s } };
    };
    return html`<label class=${wide ? 'wide' : ''}
      >${label}<input
        name=${k}
        .value=${value}
        placeholder=${k === 'minPeers' ? 'one per stage' : ''}
        ?disabled=${busy(this.snap)}
        @change=${(e: Event) => set((e.target as HTMLInputElement).value)}
    /></label>`;
  }

  override render() {
    const s = this.snap;
    const contributor = `${location.origin}/index.html?${new URLSearchParams({ signal: this.form.signal, room: this.form.room, coordinator: this.fingerprint ?? '' })}`;
    const last = s.reports[s.reports.length - 1];
    const stages = s.stages.length ? s.stages : null;
    const S = stages?.length ?? (Number(this.form.options.stages) || RUN_DEFAULTS.stages);
    const tps = runTokensPerSecond(s);
    return html`
      <form
        @submit=${(e: Event) => {
          e.preventDefault();
          void this.start();
        }}
      >
        ${this.field('signal', 'signaling server', true)} ${this.field('room', 'room')} ${this.field('stages', LABELS.stages)}
        ${this.field('minPeers', 'min peers')} ${FORM_OPTIONS.filter((k) => k !== 'stages').map((k) => this.field(k, LABELS[k]))}
        ${this.field('compress', 'compress (none, default, act=int8:64,…)', true)}
        <button type="submit" ?disabled=${busy(s)}>${busy(s) ? 'Running…' : 'Start run'}</button>
      </form>
      <p class="muted">Contributors open <a href=${contributor} target="_blank">${contributor}</a></p>
      <p data-k="phase">
        phase <b>${s.phase}</b> · step
        ${s.step}${s.steps ? ` / ${s.steps}` : ''}${last ? html` · loss <b data-k="loss">${last.loss.toFixed(4)}</b> · ${last.ms.toFixed(0)} ms/step` : ''}${tps ? ` · ${tps.toFixed(0)} tokens/s` : ''}${s.runId ? ` · run ${s.runId}` : ''}${s.restarts ? ` · ${s.restarts} step re-run(s)` : ''}
      </p>
      ${s.paused ? html`<p class="err" data-k="paused">run paused at step ${s.paused.step}: ${s.paused.reason}</p>` : ''}
      <p class="muted">wire: ${wireFigures(s)}</p>
      ${Array.from({ length: S }, (_, st) => this.stageTable(st))} ${this.unassigned()} ${this.ledgerTable()}
      <tabswarm-loss-chart .values=${s.losses}></tabswarm-loss-chart>
      ${s.error ? html`<p class="err">${s.error}</p>` : ''}
      <details>
        <summary>events</summary>
        <pre>${s.events.map((e) => `[step ${e.step}] ${e.text}`).join('\n')}</pre>
      </details>
    `;
  }

  private table(rows: PeerView[]) {
    return html`<table>
      <tr>
        <th>peer</th>
        <th>platform</th>
        <th>benchmark</th>
        <th>microbatches</th>
        <th>state</th>
      </tr>
      ${rows.map(
        (r) =>
          html`<tr data-peer=${r.id}>
            <td>${r.id}</td>
            <td>${r.platform}</td>
            <td>${r.throughput ? `${r.throughput.toFixed(0)} tok/s` : '—'}</td>
            <td>${r.microbatches}</td>
            <td>${r.state}${r.detail ? `: ${r.detail}` : ''}</td>
          </tr>`,
      )}
    </table>`;
  }

  private stageTable(st: number) {
    const r = this.snap.stages[st];
    const rows = this.snap.peers.filter((p) => p.stage === st);
    return html`<h3>stage ${st}${r ? ` (${layersLabel(r.layerStart, r.layerEnd)})` : ''}</h3>
      ${rows.length ? this.table(rows) : html`<p class="muted">no peers yet</p>`}`;
  }

  /** The contribution ledger after the latest step, and its signed export as a download. */
  private ledgerTable() {
    const rows = this.snap.ledger;
    const l = this.ledger;
    const download = l
      ? html`<button data-k="ledger-download" @click=${() => downloadText(`ledger-${l.runId}.json`, l.text)}>
          Download signed ledger (run ${l.runId})
        </button>`
      : '';
    if (!rows.length)
      return download
        ? html`<h3>ledger</h3>
            ${download}`
        : '';
    return html`<h3>ledger (credits: FLOPs of verified work)</h3>
      <table data-k="ledger">
        <tr>
          <th>contributor</th>
          <th>credits</th>
          <th>share</th>
          <th>validated</th>
          <th>strikes</th>
          <th>evicted</th>
        </tr>
        ${rows.map(
          (r) =>
            html`<tr data-ledger=${r.id}>
              <td>${r.id}</td>
              <td title=${String(r.credits)}>${flopsLabel(r.credits)}</td>
              <td>${shareLabel(r.share)}</td>
              <td>${r.validated}</td>
              <td>${r.strikes}</td>
              <td>${r.evicted ? 'yes' : ''}</td>
            </tr>`,
        )}
      </table>
      ${download}`;
  }

  private unassigned() {
    const rows = this.snap.peers.filter((p) => p.stage === null);
    return rows.length
      ? html`<h3>in the room, not assigned</h3>
          ${this.table(rows)}`
      : '';
  }
}

if (!customElements.get('tabswarm-coordinator')) customElements.define('tabswarm-coordinator', TabswarmCoordinator);

/** The vocabulary size of the run's corpus (fetched). */
async function corpusVocab(): Promise<number> {
  const res = await fetch(CORPUS_URL);
  if (!res.ok) throw new Error(`corpus ${CORPUS_URL}: HTTP ${res.status}`);
  return CharTokenizer.fromCorpus(await res.text()).vocabSize;
}
