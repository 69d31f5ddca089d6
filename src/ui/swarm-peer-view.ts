// The contributor page in swarm mode: this tab joins the swarm as a browser peer. Signaling, WebRTC links and the
// StageRuntime's protocol run here in the page (Chromium has no RTCPeerConnection in workers); the stage's WGSL
// compute runs in the stage worker (src/worker/stage-worker.ts). Shows adapter, stage, state, throughput, step,
// loss and a live loss chart. `window.tabswarm.snapshot()` exposes the same for tests.
//
// The run's loss per step comes from the coordinator: its `step-report` messages are reduced into a run view
// (src/coordinator/run-view.ts, the same view-model the coordinator's table and page render). This peer's own
// microbatch losses (last stage only) fill the steps the coordinator did not report.
import { LitElement, css, html } from 'lit';
import { RunViewStore } from '../coordinator/run-view-store';
import type { RunConfig } from '../protocol/run-config';
import type { AdapterReport } from '../gpu/device';
import { Dataset } from '../model/data';
import { CharTokenizer } from '../model/tokenizer';
import { browserRtcFactory } from '../net/rtc-browser';
import { SwarmPeer, type SwarmPeerState, type SwarmProgress } from '../swarm/peer';
import { WorkerComputeBackend } from '../swarm/worker-stage-compute';
import './loss-chart';
import { layersLabel, type SwarmParams } from './swarm-params';
import { tabIdentity } from './key-store';
import { wireFigures } from './wire-figures';
import { creditLine } from './credit-figures';
import type { CreditView } from '../coordinator/run-view';
import type { CheckpointRef } from '../swarm/checkpoints';
import { IdbCheckpointStore } from './idb-checkpoints';
import { checkpointsLine, joinedNote, observedStore, pausedLine, restoredNote, waitingLine, type PausedView } from './peer-resilience';

import { CORPUS_URL } from './swarm-params';
export { CORPUS_URL };

export interface PeerSnapshot {
  peerId: string | null;
  state: SwarmPeerState | 'starting';
  adapter: AdapterReport | null;
  benchmark: number;
  stage: number | null;
  layers: [number, number] | null;
  runId: string | null;
  steps: number | null;
  step: number;
  loss: number | null;
  losses: number[];
  tokensPerSec: number;
  runTokensPerSec: number;
  forward: number;
  backward: number;
  /** This peer's verified credits in the run's ledger, from the coordinator's `credit` messages (null: none yet). */
  credit: CreditView | null;
  /** Stage checkpoints this tab holds in IndexedDB (newest step first). */
  checkpoints: CheckpointRef[];
  /** The run paused by the coordinator (`run-state`), null while it runs. */
  paused: PausedView | null;
  /** State waiting-coordinator: ms left before this tab gives up on the run's coordinator; null otherwise. */
  waitingLeftMs: number | null;
  /** How this tab got its stage state (restored from IndexedDB, copied from a replica), oldest first. */
  notes: string[];
  error: string;
  log: string[];
}

declare global {
  interface Window {
    tabswarm?: {
      snapshot(): PeerSnapshot;
      leave(): void;
      /** Tests: this tab's stage parameters by name (null before it has a stage). */
      params(): Promise<Record<string, number[]> | null>;
    };
  }
}

async function trainingTokens(run: RunConfig): Promise<Uint32Array> {
  const res = await fetch(CORPUS_URL);
  if (!res.ok) throw new Error(`corpus ${CORPUS_URL}: HTTP ${res.status}`);
  const text = await res.text();
  const tok = CharTokenizer.fromCorpus(text);
  if (tok.vocabSize !== run.model.vocab_size) throw new Error(`corpus vocabulary ${tok.vocabSize} != run's vocab_size ${run.model.vocab_size}`);
  return Dataset.fromText(text, tok, { valFraction: 0.1 }).train;
}

export class TabswarmPeer extends LitElement {
  static override styles = css`
    :host {
      display: block;
    }
    dl {
      display: grid;
      grid-template-columns: max-content 1fr;
      gap: 0.3rem 1rem;
    }
    dt {
      color: #56607a;
    }
    .state {
      font-weight: 600;
    }
    .err {
      color: #b3261e;
      white-space: pre-wrap;
    }
    .warn {
      color: #8a5a00;
      font-weight: 600;
    }
    .note {
      color: #2b6a3f;
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

  static override properties = { params: { attribute: false }, snap: { state: true } };

  params: SwarmParams | null = null;
  snap: PeerSnapshot = {
    peerId: null,
    state: 'starting',
    adapter: null,
    benchmark: 0,
    stage: null,
    layers: null,
    runId: null,
    steps: null,
    step: 0,
    loss: null,
    losses: [],
    tokensPerSec: 0,
    runTokensPerSec: 0,
    forward: 0,
    backward: 0,
    credit: null,
    checkpoints: [],
    paused: null,
    waitingLeftMs: null,
    notes: [],
    error: '',
    log: [],
  };
  private peer: SwarmPeer | null = null;
  /** The run as the coordinator reports it. */
  private readonly run = new RunViewStore();
  /** This peer's own view of the run's loss per step (index = step; NaN: none). */
  private ownLosses: number[] = [];
  private progressStep = 0;
  private progressLoss: number | null = null;
  private backend: WorkerComputeBackend | null = null;
  private started = false;

  override connectedCallback(): void {
    super.connectedCallback();
    window.tabswarm = { snapshot: () => structuredClone(this.snap), leave: () => this.leave(), params: () => this.params_() };
    // Best effort: the tab may be gone before the write lands (the periodic saves are the guarantee).
    window.addEventListener('pagehide', () => this.leave(true));
    if (!this.started && this.params) {
      this.started = true;
      void this.start(this.params);
    }
  }

  private async params_(): Promise<Record<string, number[]> | null> {
    const sr = this.peer?.runtime;
    if (!sr) return null;
    const named = await sr.stage.params.read('params');
    return Object.fromEntries([...named].map(([k, v]) => [k, Array.from(v)]));
  }

  private note(s: string): void {
    this.update_({ notes: [...this.snap.notes, s].slice(-20) });
    this.logLine(s);
  }

  private update_(p: Partial<PeerSnapshot>): void {
    this.snap = { ...this.snap, ...p };
  }

  private logLine(s: string): void {
    const log = [...this.snap.log, `${new Date().toISOString().slice(11, 23)} ${s}`];
    this.update_({ log: log.slice(-200) });
  }

  private async start(p: SwarmParams): Promise<void> {
    try {
      this.backend = await WorkerComputeBackend.start();
      this.update_({ adapter: this.backend.adapter });
      const backend = this.backend;
      if (p.coordinator === null) throw new Error("the join URL has no coordinator=<the coordinator key's fingerprint, 64 hex digits>");
      const identity = await tabIdentity('peer');
      // This tab's checkpoints: its own IndexedDB database, by its key slot's id (a reload finds them again).
      const idb = new IdbCheckpointStore(identity.id, (ref, why) =>
        this.logLine(`deleted damaged checkpoint ${ref.runId} stage ${ref.stage} step ${ref.step}: ${why}`),
      );
      const checkpoints = observedStore(idb, (refs) => this.update_({ checkpoints: refs }));
      this.update_({ checkpoints: await idb.list().catch(() => []) });
      const peer = await SwarmPeer.join({
        url: p.signal,
        room: p.room,
        coordinator: p.coordinator,
        identity,
        checkpoints,
        token: p.token,
        rtcFactory: browserRtcFactory({ iceServers: [] }),
        compute: async () => backend,
        tokens: trainingTokens,
        platform: 'browser',
        throughput: p.throughput,
        log: (s) => {
          if (p.log) console.log(s);
          this.logLine(s);
        },
        onState: (state) => this.update_({ state }),
      });
      this.peer = peer;
      this.update_({ peerId: peer.peerId, benchmark: peer.throughput, state: peer.state });
      peer.signaling.on('control', ({ from, msg }) => {
        if (msg.type === 'step-report' || msg.type === 'credit') this.run.dispatch({ kind: 'control', from, msg });
        if (msg.type === 'run-state') {
          this.update_({ paused: msg.paused ? { reason: msg.reason, step: msg.step } : null });
          this.logLine(msg.paused ? pausedLine({ reason: msg.reason, step: msg.step }) : `run goes on at step ${msg.step}`);
        }
      });
      peer.events.on('state-received', ({ from, step }) => this.note(joinedNote(from, step)));
      peer.events.on('restored', ({ step, digest }) => this.note(restoredNote(step, digest)));
      this.run.onChange(({ view }) => {
        if (view.credit !== this.snap.credit) this.update_({ credit: view.credit });
        this.refreshLoss();
        this.requestUpdate(); // the wire figures
      });
      peer.events.on('assigned', ({ stage, run }) => {
        const r = run.stages[stage];
        this.run.dispatch({ kind: 'started', run });
        this.update_({ stage, layers: [r.layerStart, r.layerEnd], runId: run.runId, steps: run.steps });
      });
      peer.events.on('progress', (pr: SwarmProgress) => this.onProgress(pr));
      peer.events.on('error', (e) => this.update_({ error: e.message }));
      peer.events.on('shutdown', ({ reason }) => this.logLine(`shutdown: ${reason ?? ''}`));
    } catch (e) {
      this.update_({ state: 'error', error: (e as Error).message });
      await this.backend?.destroy().catch(() => undefined);
    }
  }

  private onProgress(pr: SwarmProgress): void {
    // One point per step: the loss known here after step `pr.step - 1` was applied.
    if (pr.loss !== null && pr.step > 0) {
      while (this.ownLosses.length < pr.step - 1) this.ownLosses.push(Number.NaN);
      this.ownLosses[pr.step - 1] = pr.loss;
    }
    this.progressStep = pr.step;
    this.progressLoss = pr.loss;
    const waitingLeftMs = pr.state === 'waiting-coordinator' ? (pr.coordinatorWaitLeftMs ?? null) : null;
    this.update_({
      waitingLeftMs,
      state: pr.state,
      tokensPerSec: pr.tokensPerSec,
      runTokensPerSec: pr.runTokensPerSec,
      forward: pr.forward,
      backward: pr.backward,
    });
    this.refreshLoss();
  }

  /** Step, loss and the loss curve: the coordinator's figures where it reported them, this peer's elsewhere. */
  private refreshLoss(): void {
    const run = this.run.view;
    const n = Math.max(run.losses.length, this.ownLosses.length);
    const losses = Array.from({ length: n }, (_, i) => (Number.isFinite(run.losses[i]) ? run.losses[i] : (this.ownLosses[i] ?? Number.NaN)));
    const step = Math.max(this.progressStep, run.step);
    const atStep = step > 0 ? losses[step - 1] : undefined;
    const loss = atStep !== undefined && Number.isFinite(atStep) ? atStep : this.progressLoss;
    this.update_({ step, loss, losses });
  }

  /** Leaves the swarm; with `save`, after saving the stage as it is now (pagehide). */
  leave(save = false): void {
    const peer = this.peer;
    this.peer = null;
    if (peer && save) void peer.saveNow().finally(() => peer.close());
    else peer?.close();
    if (!this.snap.peerId) void this.backend?.destroy();
  }

  override render() {
    const s = this.snap;
    const a = s.adapter;
    const p = this.params;
    return html`
      <dl>
        <dt>swarm</dt>
        <dd>${p ? `${p.signal} · room ${p.room}` : '—'}${s.peerId ? ` · peer ${s.peerId}` : ''}</dd>
        <dt>adapter</dt>
        <dd data-k="adapter">${a ? `${a.vendor} ${a.architecture} ${a.description} [${a.key}]` : '—'}</dd>
        <dt>state</dt>
        <dd class="state" data-k="state">${s.state}</dd>
        <dt>stage</dt>
        <dd data-k="stage">
          ${s.stage === null || s.layers === null ? '—' : `${s.stage} (${layersLabel(s.layers[0], s.layers[1])})${s.runId ? ` of run ${s.runId}` : ''}`}
        </dd>
        <dt>benchmark</dt>
        <dd>${s.benchmark ? `${s.benchmark.toFixed(0)} tokens/s` : '—'}</dd>
        <dt>throughput</dt>
        <dd data-k="throughput">
          ${s.runTokensPerSec ? `${s.tokensPerSec.toFixed(0)} tokens/s here · ${s.runTokensPerSec.toFixed(0)} tokens/s swarm (last step)` : '—'}
        </dd>
        <dt>step</dt>
        <dd data-k="step">${s.step}${s.steps !== null ? ` / ${s.steps}` : ''}</dd>
        <dt>loss</dt>
        <dd data-k="loss">${s.loss === null ? '—' : s.loss.toFixed(4)}</dd>
        <dt>microbatches</dt>
        <dd>${s.forward} forward · ${s.backward} backward</dd>
        <dt>wire</dt>
        <dd>${wireFigures(this.run.view)}</dd>
        <dt>credits</dt>
        <dd data-k="credits">${creditLine(s.credit)}</dd>
        <dt>checkpoints</dt>
        <dd data-k="checkpoints">${checkpointsLine(s.checkpoints)}</dd>
      </dl>
      ${s.paused ? html`<p class="warn" data-k="paused">${pausedLine(s.paused)}</p>` : ''}
      ${s.waitingLeftMs !== null ? html`<p class="warn" data-k="waiting">${waitingLine(s.waitingLeftMs)}</p>` : ''}
      ${s.notes.map((n) => html`<p class="note" data-k="note">${n}</p>`)}
      <tabswarm-loss-chart .values=${s.losses}></tabswarm-loss-chart>
      ${s.error ? html`<p class="err">${s.error}</p>` : ''}
      <details>
        <summary>log</summary>
        <pre>${s.log.join('\n')}</pre>
      </details>
    `;
  }
}

if (!customElements.get('tabswarm-peer')) customElements.define('tabswarm-peer', TabswarmPeer);
