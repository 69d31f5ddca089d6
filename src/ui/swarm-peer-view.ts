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
  error: string;
  log: string[];
}

declare global {
  interface Window {
    tabswarm?: { snapshot(): PeerSnapshot; leave(): void };
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
    window.tabswarm = { snapshot: () => structuredClone(this.snap), leave: () => this.leave() };
    window.addEventListener('pagehide', () => this.leave());
    if (!this.started && this.params) {
      this.started = true;
      void this.start(this.params);
    }
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
      const peer = await SwarmPeer.join({
        url: p.signal,
        room: p.room,
        coordinator: p.coordinator,
        identity: await tabIdentity('peer'),
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
      });
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
    this.update_({ state: pr.state, tokensPerSec: pr.tokensPerSec, runTokensPerSec: pr.runTokensPerSec, forward: pr.forward, backward: pr.backward });
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

  leave(): void {
    this.peer?.close();
    this.peer = null;
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
      </dl>
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
