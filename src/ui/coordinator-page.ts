// Coordinator page (coordinator.html): runs the swarm's coordinator in this tab (src/coordinator/run-lifecycle.ts,
// role 'coordinator' on the signaling server) and shows its run view (src/coordinator/run-view.ts).
//
// Create (#create) connects the coordinator with the run held (Coordinator `hold`): tabs waiting in the room
// announce themselves, are assigned a stage and show in the swarm graph before Start (#start) lets step 0 begin.
// Stop (#stop) ends the run after the step in progress (the peers get the run's shutdown with the reason). After the
// last step (or a Stop) the page copies the weights from one replica per stage (an observer peer over WebRTC), then
// evaluates the validation loss, writes a sample, offers a safetensors checkpoint (#export) and sends the final
// shutdown; the sample box (#sample-prompt, #sample, #sample-out) samples again on demand.
//
// On `tabswarm serve` the signaling URL, room, ICE servers and the served dataset come from GET /api/config
// (serve-client.ts); the dataset is the default corpus, the served one or an uploaded text file (char or GPT-2 BPE).
// Elsewhere the form's signaling URL is used (default ws://<host>:8787, `npm run server`).
//
// URL parameters (all optional, prefill the form): signal, room, min-peers, autostart=1 (create and start at load),
// and every run option under its CLI flag's name (coordinator-form.ts), with the CLI's defaults.
import { LitElement, css, html } from 'lit';
import { detailsLogStyles } from './details-log';
import type { Identity } from '../net/identity';
import { browserRtcFactory } from '../net/rtc-browser';
import type { SavedRun } from '../coordinator/run-state';
import { DEFAULT_ROOM, RUN_DEFAULTS } from '../coordinator/run-builder';
import { CoordinatorRun } from '../coordinator/run-lifecycle';
import { finalRunSummary, runTokensPerSecond, stepTokensPerSecond, type FinalRunSummary, type RunView } from '../coordinator/run-view';
import { RunViewStore } from '../coordinator/run-view-store';
import type { ServeConfig } from '../protocol/serve-config';
import type { DataSpec } from '../protocol/run-config';
import { tabIdentity } from './key-store';
import { forgetRun, savedRunOf, storeRun } from './run-store';
import { defaultDataset, servedDataset, uploadDataset, type DataChoice, type PageDataset } from './coordinator-data';
import { defaultOf, FORM_OPTIONS, formFromUrl, LABELS, minPeersOf, runFromForm, type FormOption, type RunForm } from './coordinator-form';
import { fetchServeConfig, rtcConfig } from './serve-client';
import { defaultSignalUrl } from './swarm-params';
import { wireFigures } from './wire-figures';
import { stageTimeFigures } from './stage-time-figures';
import { flopsLabel, shareLabel } from './credit-figures';
import { downloadBytes, downloadText, lastLedger, storeLedger, type StoredLedger } from './ledger-store';
import { ModelSnapshot } from './model-snapshot';
import './swarm-graph';
import './uplot-chart';
import './sample-box';

/** The coordinator page's state, as `window.tabswarmCoordinator.snapshot()` gives it to tests: the run view. */
export type CoordinatorSnapshot = RunView;

/** Where the page's run is: none, created (connected, held), started, wrapping up after the steps, done. */
export type PageStage = 'none' | 'created' | 'started' | 'collecting' | 'done';

/** Tokens of the end-of-run sample. */
const SAMPLE_TOKENS = 200;

declare global {
  interface Window {
    tabswarmCoordinator?: {
      snapshot(): CoordinatorSnapshot;
      /** Creates the run if there is none, then starts it. */
      start(): Promise<void>;
      /** The page's stage and, once done, the final summary (val_loss included). */
      page(): { stage: PageStage; summary: FinalRunSummary | null; valLoss: number | null; weightsStep: number | null };
      /** The latest signed ledger export (null: none yet). */
      ledger(): string | null;
      /** This page's coordinator key fingerprint (the room is bound to it); null until the key is loaded. */
      fingerprint(): string | null;
    };
  }
}

export class TabswarmCoordinator extends LitElement {
  static override styles = [
    detailsLogStyles,
    css`
      :host {
        display: block;
        min-width: 0;
      }
      form {
        display: grid;
        grid-template-columns: repeat(auto-fill, minmax(8.5rem, 1fr));
        gap: 0.5rem 1rem;
        margin-bottom: 0.6rem;
      }
      label {
        display: flex;
        flex-direction: column;
        font-size: 0.8rem;
        color: #56607a;
        min-width: 0;
      }
      label.wide {
        grid-column: 1 / -1;
      }
      input,
      select {
        font: inherit;
        padding: 0.2rem 0.3rem;
        min-width: 0;
      }
      .buttons {
        display: flex;
        flex-wrap: wrap;
        gap: 0.5rem;
        margin: 0.4rem 0;
      }
      button {
        font: inherit;
        padding: 0.4rem 1rem;
      }
      .scroll {
        overflow-x: auto;
      }
      table {
        border-collapse: collapse;
        width: 100%;
        margin: 0.5rem 0;
        font-size: 0.85rem;
      }
      th,
      td {
        text-align: left;
        padding: 0.2rem 0.5rem;
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
        font-size: 0.85rem;
      }
      a,
      .wrap {
        overflow-wrap: anywhere;
      }
      .stat {
        font-size: 0.95rem;
      }
    `,
  ];

  static override properties = {
    form: { state: true },
    snap: { state: true },
    ledger: { state: true },
    fingerprint: { state: true },
    stage: { state: true },
    cfg: { state: true },
    dataChoice: { state: true },
    tokenizerChoice: { state: true },
    model: { state: true },
    valLoss: { state: true },
    summary: { state: true },
    note: { state: true },
    error: { state: true },
  };

  form: RunForm = formFromUrl(location.search, { signal: defaultSignalUrl() });
  private readonly store = new RunViewStore();
  snap: RunView = this.store.view;
  ledger: StoredLedger | null = null;
  fingerprint: string | null = null;
  stage: PageStage = 'none';
  /** GET /api/config on `tabswarm serve` (null elsewhere). */
  cfg: ServeConfig | null = null;
  dataChoice: DataChoice = 'default';
  tokenizerChoice: 'char' | 'gpt2' = 'char';
  /** The collected weights (after the run). */
  model: ModelSnapshot | null = null;
  valLoss: number | null = null;
  summary: FinalRunSummary | null = null;
  /** What the page is doing after the steps (collecting, evaluating, ...). */
  note = '';
  /** A failure of the page's own (creating a run, uploading, collecting); the run's are in the view. */
  error = '';
  private session: CoordinatorRun | null = null;
  private pageData: PageDataset | null = null;
  private identity: Promise<Identity> | null = null;
  private upload: File | null = null;

  constructor() {
    super();
    this.store.onChange(({ view }) => (this.snap = view));
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.tabswarmCoordinator = {
      snapshot: () => structuredClone(this.snap),
      start: async () => {
        if (this.stage === 'none') await this.create();
        this.begin();
      },
      page: () => ({ stage: this.stage, summary: this.summary, valLoss: this.valLoss, weightsStep: this.model?.step ?? null }),
      ledger: () => this.ledger?.text ?? null,
      fingerprint: () => this.fingerprint,
    };
    void this.init();
    void lastLedger().then((l) => (this.ledger ??= l));
    window.addEventListener('pagehide', () => this.close());
  }

  private async init(): Promise<void> {
    const q = new URLSearchParams(location.search);
    try {
      this.cfg = await fetchServeConfig();
    } catch (e) {
      this.error = `GET /api/config: ${(e as Error).message}`;
    }
    if (this.cfg) {
      // On serve the server says where signaling is and which room pages use; the URL may still name another room.
      this.form = { ...this.form, signal: q.get('signal') || this.cfg.signal, room: q.get('room') || this.cfg.room || DEFAULT_ROOM };
      if (this.cfg.data) this.dataChoice = 'served';
    }
    try {
      const id = await (this.identity ??= tabIdentity('coordinator'));
      this.fingerprint = id.fingerprint;
      // A reloaded page resumes its room's unfinished run (src/ui/run-store.ts), re-adopting the swarm. Looked up
      // before autostart: a reloaded autostart page would otherwise start a new run and orphan the swarm.
      const saved = await savedRunOf({ room: this.form.room, coordinator: id.fingerprint });
      if (saved) await this.create(saved);
      else if (q.get('autostart') === '1') {
        await this.create();
        this.begin();
      }
    } catch (e) {
      this.store.dispatch({ kind: 'failed', error: `no coordinator key: ${(e as Error).message}` });
    }
  }

  /** The dataset the form names (fetched, or uploaded now). */
  private async pickDataset(): Promise<PageDataset> {
    if (this.dataChoice === 'served') {
      if (!this.cfg?.data) throw new Error('this server serves no dataset (tabswarm serve --data FILE)');
      return servedDataset(this.cfg.data);
    }
    if (this.dataChoice === 'upload') {
      if (!this.upload) throw new Error('choose a text file to upload');
      if (!this.cfg?.upload) throw new Error('this server takes no uploads (not tabswarm serve, or --no-upload)');
      this.note = `uploading ${this.upload.name} (${(this.upload.size / 1e6).toFixed(2)} MB) with the ${this.tokenizerChoice} tokenizer…`;
      const spec = await uploadDataset(this.upload, this.tokenizerChoice);
      this.note = '';
      return servedDataset(spec);
    }
    return defaultDataset();
  }

  /** Connects the coordinator with the run held (or resumes a saved run, running): waiting tabs show from now on. */
  async create(resume?: SavedRun): Promise<void> {
    if (this.stage !== 'none' && this.stage !== 'done') return;
    this.close();
    this.error = '';
    this.model = null;
    this.valLoss = null;
    this.summary = null;
    this.store.dispatch({ kind: 'connecting' });
    try {
      const f = this.form;
      this.pageData = resume ? await datasetOf(resume.run.data ?? null) : await this.pickDataset();
      const run = resume?.run ?? runFromForm(f, this.pageData.tokenizer.vocabSize, this.pageData.spec);
      const session = await CoordinatorRun.start({
        url: f.signal,
        room: f.room,
        run,
        minPeers: minPeersOf(f, run),
        identity: await (this.identity ??= tabIdentity('coordinator')),
        view: this.store,
        log: (s) => console.log(s),
        resume,
        hold: !resume,
        holdShutdown: true,
        onRunState: (text) => storeRun(f.room, text).catch((e: unknown) => console.warn(`run not kept in IndexedDB: ${(e as Error).message}`)),
        onLedger: async (text) => {
          this.ledger = { runId: run.runId, text };
          await storeLedger(run.runId, text).catch((e: unknown) => console.warn(`ledger not kept in IndexedDB: ${(e as Error).message}`));
        },
      });
      this.session = session;
      this.stage = resume ? 'started' : 'created';
      void this.follow(session);
    } catch (e) {
      this.stage = 'none';
      this.note = '';
      if (this.snap.phase !== 'error') this.store.dispatch({ kind: 'failed', error: (e as Error).message });
    }
  }

  begin(): void {
    if (this.stage !== 'created' || !this.session) return;
    this.session.begin();
    this.stage = 'started';
  }

  /** Ends the run after the step in progress; the wrap-up (weights, sample, summary) follows as after a full run. */
  stop(): void {
    if (!this.session || (this.stage !== 'created' && this.stage !== 'started')) return;
    this.session.stop('stopped on the coordinator page');
    this.note = 'stopping after the step in progress…';
  }

  /** After the run's steps: copy the weights, evaluate, sample, release the peers, summarise. */
  private async follow(session: CoordinatorRun): Promise<void> {
    try {
      await session.finished();
    } catch {
      // The view shows why the run failed.
      this.stage = 'done';
      this.note = '';
      this.close();
      return;
    }
    this.stage = 'collecting';
    const { run } = session;
    const members = session.coordinator.members();
    try {
      if (session.coordinator.step > 0 && members.every((m) => m.length > 0) && this.pageData) {
        this.note = 'copying the weights from one replica per stage…';
        const rtc = browserRtcFactory(rtcConfig(this.cfg));
        const params = await session.collectWeights({ rtcFactory: rtc, log: (s) => console.log(s) });
        const model = new ModelSnapshot(run, session.coordinator.step, params, this.pageData.tokenizer);
        this.model = model;
        this.note = 'evaluating the validation loss…';
        this.valLoss = await model.validationLoss(await this.pageData.val());
        this.note = 'sampling…';
        const text = await model.sample('', SAMPLE_TOKENS, run.seed);
        const box = this.renderRoot.querySelector('tabswarm-sample-box');
        if (box) box.out = text;
      }
    } catch (e) {
      this.error = `after the run: ${(e as Error).message}`;
    }
    await session.savedRun();
    session.release();
    this.summary = finalRunSummary(session.view.view, this.valLoss);
    await forgetRun(this.form.room).catch(() => undefined); // finished: nothing to resume
    this.note = '';
    this.stage = 'done';
    // Let the shutdown reach the server before the socket closes.
    setTimeout(() => {
      if (this.session === session) this.close();
    }, 300);
  }

  private close(): void {
    this.session?.close();
    this.session = null;
  }

  private exportCheckpoint(): void {
    const m = this.model;
    if (!m) return;
    downloadBytes(`${m.run.runId}-step${m.step}.safetensors`, m.checkpoint());
  }

  private field(k: 'signal' | 'room' | 'minPeers' | 'compress' | FormOption, label: string, wide = false) {
    const top = k === 'signal' || k === 'room' || k === 'minPeers';
    const value = top ? this.form[k] : (this.form.options[k] ?? '');
    const placeholder = k === 'minPeers' ? 'one per stage' : k === 'compress' ? 'none' : top ? '' : defaultOf(k);
    const set = (s: string) => {
      if (top) this.form = { ...this.form, [k]: s };
      else this.form = { ...this.form, options: { ...this.form.options, [k]: s } };
    };
    return html`<label class=${wide ? 'wide' : ''}
      >${label}<input
        name=${k}
        .value=${value}
        placeholder=${placeholder}
        ?disabled=${this.stage !== 'none' && this.stage !== 'done'}
        @change=${(e: Event) => set((e.target as HTMLInputElement).value)}
    /></label>`;
  }

  private dataFields() {
    const locked = this.stage !== 'none' && this.stage !== 'done';
    const served = this.cfg?.data;
    return html`<label class="wide"
        >dataset<select
          name="data"
          ?disabled=${locked}
          @change=${(e: Event) => (this.dataChoice = (e.target as HTMLSelectElement).value as DataChoice)}
        >
          <option value="default" ?selected=${this.dataChoice === 'default'}>tinyshakespeare (characters)</option>
          ${
            served
              ? html`<option value="served" ?selected=${this.dataChoice === 'served'}>
                  served: ${served.name} (${served.tokenizer}, ${served.trainTokens} tokens)
                </option>`
              : ''
          }
          ${this.cfg?.upload ? html`<option value="upload" ?selected=${this.dataChoice === 'upload'}>upload a text file…</option>` : ''}
        </select></label
      >
      ${
        this.dataChoice === 'upload'
          ? html`<label class="wide"
                >text file<input
                  type="file"
                  name="file"
                  accept="text/plain,.txt,.md"
                  ?disabled=${locked}
                  @change=${(e: Event) => (this.upload = (e.target as HTMLInputElement).files?.[0] ?? null)}
              /></label>
              <label
                >tokenizer<select
                  name="tokenizer"
                  ?disabled=${locked}
                  @change=${(e: Event) => (this.tokenizerChoice = (e.target as HTMLSelectElement).value === 'gpt2' ? 'gpt2' : 'char')}
                >
                  <option value="char">characters</option>
                  <option value="gpt2">GPT-2 BPE (used ids)</option>
                </select></label
              >`
          : ''
      }`;
  }

  override render() {
    const s = this.snap;
    const st = this.stage;
    const contributor = this.cfg
      ? `${location.origin}/?${new URLSearchParams({ room: this.form.room, coordinator: this.fingerprint ?? '' })}`
      : `${location.origin}/index.html?${new URLSearchParams({ signal: this.form.signal, room: this.form.room, coordinator: this.fingerprint ?? '' })}`;
    const last = s.reports[s.reports.length - 1];
    const tps = runTokensPerSecond(s);
    const waiting = s.peers.filter((p) => p.state !== 'gone').length;
    return html`
      <form @submit=${(e: Event) => e.preventDefault()}>
        ${this.cfg ? '' : this.field('signal', 'signaling server', true)} ${this.field('room', 'room')} ${this.field('stages', LABELS.stages)}
        ${this.field('minPeers', 'min peers')} ${FORM_OPTIONS.filter((k) => k !== 'stages').map((k) => this.field(k, LABELS[k]))}
        ${this.field('compress', 'compress (none, default, act=int8:64,…)', true)} ${this.dataFields()}
      </form>
      <div class="buttons">
        <button id="create" ?disabled=${st !== 'none' && st !== 'done'} @click=${() => void this.create()}>Create run</button>
        <button id="start" ?disabled=${st !== 'created'} @click=${() => this.begin()}>Start</button>
        <button id="stop" ?disabled=${st !== 'created' && st !== 'started'} @click=${() => this.stop()}>Stop</button>
        <button id="export" ?disabled=${!this.model} @click=${() => this.exportCheckpoint()}>Export checkpoint</button>
      </div>
      ${this.cfg ? html`<p class="muted wrap">served by tabswarm serve · signaling ${this.cfg.signal} · ${this.cfg.iceServers.length} ICE server(s)</p>` : ''}
      <p class="muted">Contributors open <a href=${contributor} target="_blank">${contributor}</a></p>
      <p class="stat" data-k="phase">
        <b data-k="stage">${stageLine(st, s, waiting, RUN_DEFAULTS.stages)}</b> · phase ${s.phase} · step
        ${s.step}${s.steps ? ` / ${s.steps}` : ''}${last ? html` · loss <b data-k="loss">${last.loss.toFixed(4)}</b> · ${last.ms.toFixed(0)} ms/step` : ''}${
          tps ? html` · <span data-k="tps">${tps.toFixed(0)} tokens/s</span>` : ''
        }${s.runId ? ` · run ${s.runId}` : ''}${s.restarts ? ` · ${s.restarts} step re-run(s)` : ''}
      </p>
      ${this.note ? html`<p class="muted" data-k="note">${this.note}</p>` : ''}
      ${s.paused ? html`<p class="err" data-k="paused">run paused at step ${s.paused.step}: ${s.paused.reason}</p>` : ''}
      ${s.error ? html`<p class="err" data-k="error">${s.error}</p>` : ''}
      ${this.error ? html`<p class="err" data-k="page-error">${this.error}</p>` : ''}
      <h3>swarm</h3>
      <tabswarm-swarm-graph .view=${s}></tabswarm-swarm-graph>
      <h3>loss</h3>
      <tabswarm-uplot
        data-k="loss-chart"
        .series=${LOSS_SERIES}
        .data=${lossData(s, this.valLoss, this.model?.step ?? null)}
        yLabel="loss"
      ></tabswarm-uplot>
      <p class="muted">
        Validation loss: the coordinator learns no periodic validation loss from the peers; the page evaluates the collected weights on the held-out
        split once, after the last
        step${this.valLoss !== null ? html` (<b data-k="val-loss">${this.valLoss.toFixed(4)}</b> at step ${this.model?.step ?? s.step})` : ''}.
      </p>
      <h3>throughput</h3>
      <tabswarm-uplot data-k="tps-chart" .series=${TPS_SERIES} .data=${tpsData(s)} yLabel="tokens/s"></tabswarm-uplot>
      <h3>wire</h3>
      <p class="muted">${wireFigures(s)} · ${(totalBytes(s) / 1e6).toFixed(2)} MB sent in all</p>
      <h3>where each stage's step time goes</h3>
      <p class="muted">${stageTimeFigures(s)}</p>
      ${this.ledgerTable()}
      <h3>sample</h3>
      <tabswarm-sample-box
        .sample=${this.model ? (p: string) => (this.model as ModelSnapshot).sample(p, SAMPLE_TOKENS, Date.now() % 1e6) : null}
        note=${
          this.model
            ? `weights of step ${this.model.step}, copied from one replica per stage`
            : 'samples come from the weights copied after the last step (the run does not pause for a copy between steps)'
        }
      ></tabswarm-sample-box>
      ${
        this.summary
          ? html`<h3>summary</h3>
              <pre data-k="summary">${JSON.stringify(this.summary, null, 1)}</pre>`
          : ''
      }
      <details>
        <summary>peers and events</summary>
        ${this.peerTable()}
        <pre>${s.events.map((e) => `[step ${e.step}] ${e.text}`).join('\n')}</pre>
      </details>
    `;
  }

  private peerTable() {
    return html`<div class="scroll">
      <table>
        <tr>
          <th>peer</th>
          <th>stage</th>
          <th>platform</th>
          <th>benchmark</th>
          <th>microbatches</th>
          <th>state</th>
        </tr>
        ${this.snap.peers.map(
          (r) =>
            html`<tr data-peer=${r.id}>
              <td>${r.id.slice(0, 10)}</td>
              <td>${r.stage ?? '—'}</td>
              <td>${r.platform}</td>
              <td>${r.throughput ? `${r.throughput.toFixed(0)} tok/s` : '—'}</td>
              <td>${r.microbatches}</td>
              <td>${r.state}${r.detail ? `: ${r.detail}` : ''}</td>
            </tr>`,
        )}
      </table>
    </div>`;
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
      <div class="scroll">
        <table data-k="ledger">
          <tr>
            <th>contributor</th>
            <th>credits</th>
            <th>share</th>
            <th>validated</th>
            <th>strikes</th>
          </tr>
          ${rows.map(
            (r) =>
              html`<tr data-ledger=${r.id}>
                <td title=${r.id}>${r.id.slice(0, 10)}${r.evicted ? ' (evicted)' : ''}</td>
                <td title=${String(r.credits)}>${flopsLabel(r.credits)}</td>
                <td>${shareLabel(r.share)}</td>
                <td>${r.validated}</td>
                <td>${r.strikes}</td>
              </tr>`,
          )}
        </table>
      </div>
      ${download}`;
  }
}

const LOSS_SERIES = [
  { label: 'train loss', stroke: '#3b5bdb' },
  { label: 'val loss', stroke: '#e8590c' },
];
const TPS_SERIES = [{ label: 'tokens/s', stroke: '#2f9e44' }];

/** [steps, train loss, val loss (one point: the collected weights')]. */
function lossData(v: RunView, val: number | null, at: number | null): (number | null)[][] {
  const xs = v.losses.map((_, i) => i);
  const train = v.losses.map((l) => (Number.isFinite(l) ? l : null));
  const vals: (number | null)[] = xs.map(() => null);
  if (val !== null && at !== null && at > 0) vals[Math.min(at - 1, xs.length - 1)] = val;
  return [xs, train, vals];
}

function tpsData(v: RunView): (number | null)[][] {
  return [v.reports.map((r) => r.step), v.reports.map((r) => stepTokensPerSecond(v, r))];
}

function totalBytes(v: RunView): number {
  return Object.values(v.wire).reduce((a, b) => a + b, 0);
}

function stageLine(st: PageStage, v: RunView, inRoom: number, defaultStages: number): string {
  const S = v.stages.length || defaultStages;
  switch (st) {
    case 'none':
      return 'no run: set it up and press Create';
    case 'created':
      return `created: ${inRoom} tab(s) waiting in the room for ${S} stage(s); press Start`;
    case 'started':
      return v.phase === 'waiting' ? `started: waiting for peers (${inRoom} in the room)` : 'training';
    case 'collecting':
      return 'run over: copying the weights';
    case 'done':
      return v.phase === 'error' ? 'run failed' : 'run over';
  }
}

async function datasetOf(spec: DataSpec | null): Promise<PageDataset> {
  return spec ? servedDataset(spec) : defaultDataset();
}

if (!customElements.get('tabswarm-coordinator')) customElements.define('tabswarm-coordinator', TabswarmCoordinator);
