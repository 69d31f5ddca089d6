// The contributor page in swarm mode: this tab joins the swarm as a browser peer. Signaling, WebRTC links and the
// StageRuntime's protocol run here in the page (Chromium has no RTCPeerConnection in workers); the stage's WGSL
// compute runs in the stage worker (src/worker/stage-worker.ts). The contract (docs/deployment.md "Pages"): buttons
// #join #pause #resume #leave, the host's `data-state` (src/ui/peer-ui-state.ts), and `window.tabswarm.snapshot()`.
//
// The loss shown is the RUN's: the coordinator's `step-report` messages reduced into a run view
// (src/coordinator/run-view.ts), never this tab's own microbatches (a last stage sees only its share of a step, a
// first stage none), so every tab of a run shows the same number. The run view also gets the memberships
// (swarm-members) for the compact swarm view and the ledger's `credit` messages for this tab's contribution.
// Pause closes the SwarmPeer but keeps the stage worker, the key and the IndexedDB checkpoints: resume rejoins with
// the same key and the coordinator restores the stage (its checkpoint or a live replica). Leave also ends the worker.
import { LitElement, css, html } from 'lit';
import { figureListStyles } from './figure-list';
import { detailsLogStyles } from './details-log';
import { RunViewStore } from '../coordinator/run-view-store';
import { lastLoss, type CreditView } from '../coordinator/run-view';
import type { RunConfig } from '../protocol/run-config';
import type { AdapterReport } from '../gpu/device';
import type { ServeConfig } from '../protocol/serve-config';
import { browserRtcFactory } from '../net/rtc-browser';
import { SwarmPeer, type SwarmPeerState, type SwarmProgress } from '../swarm/peer';
import { WorkerComputeBackend } from '../swarm/worker-stage-compute';
import type { CheckpointRef, CheckpointStore } from '../swarm/checkpoints';
import type { Identity } from '../net/identity';
import './loss-chart';
import './swarm-columns';
import { layersLabel, type SwarmParams } from './swarm-params';
import { tabIdentity } from './key-store';
import { wireFigures } from './wire-figures';
import { creditLine, flopsLabel, shareLabel } from './credit-figures';
import { IdbCheckpointStore } from './idb-checkpoints';
import { checkpointsLine, joinedNote, observedStore, pausedLine, restoredNote, waitingLine, type PausedView } from './peer-resilience';
import { isCpuAdapter, uiState, uiStateLine, type UiState } from './peer-ui-state';
import { errorAdvice } from './error-advice';
import { keptBackend } from './kept-backend';
import { rtcConfig } from './serve-client';
import { tokensInWorker } from './worker-tokens';

import { CORPUS_URL } from './swarm-params';
export { CORPUS_URL };

/** How long Pause and Leave wait for the stage checkpoint before leaving anyway. */
const SAVE_ON_LEAVE_MS = 5_000;

/** This tab's part in the run: tokens its stage computed (microbatches x B x T), its ledger credits and share. */
export interface Contribution {
  tokens: number;
  credits: number;
  share: number;
}

export interface PeerSnapshot {
  peerId: string | null;
  state: SwarmPeerState | 'starting';
  /** The page's one state (docs/deployment.md "Pages"); also the host's data-state attribute. */
  uiState: UiState;
  adapter: AdapterReport | null;
  /** The adapter is a CPU fallback (SwiftShader, lavapipe, llvmpipe). */
  cpuAdapter: boolean;
  benchmark: number;
  stage: number | null;
  layers: [number, number] | null;
  runId: string | null;
  steps: number | null;
  /** Steps of the run done, as the coordinator reported them (or as this peer applied them, if further). */
  step: number;
  /** The run's loss at its latest reported step (the coordinator's step report); null: none yet. */
  loss: number | null;
  /** The run's loss per step (index = step; NaN: not reported here). */
  losses: number[];
  /** Same as loss / the coordinator's step count: the contract's names. */
  runLoss: number | null;
  runStep: number;
  contribution: Contribution;
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
      join(): Promise<void>;
      pause(): Promise<void>;
      resume(): Promise<void>;
      leave(): Promise<void>;
      /** Tests: this tab's stage parameters by name (null before it has a stage). */
      params(): Promise<Record<string, number[]> | null>;
    };
  }
}

/**
 * The run's train split (src/swarm/run-data.ts): fetched from its data.url and checked against its sha256, or for a
 * default run the corpus from this page's host, tokenized in slices (no long main-thread task while joining).
 */
async function trainingTokens(run: RunConfig): Promise<Uint32Array> {
  const { runTokens } = await import('../swarm/run-data');
  return runTokens(run, { base: location.href });
}

const emptySnapshot = (): PeerSnapshot => ({
  peerId: null,
  state: 'starting',
  uiState: 'idle',
  adapter: null,
  cpuAdapter: false,
  benchmark: 0,
  stage: null,
  layers: null,
  runId: null,
  steps: null,
  step: 0,
  loss: null,
  losses: [],
  runLoss: null,
  runStep: 0,
  contribution: { tokens: 0, credits: 0, share: 0 },
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
});

export class TabswarmPeer extends LitElement {
  static override styles = [
    figureListStyles,
    detailsLogStyles,
    css`
      :host {
        display: block;
      }
      * {
        box-sizing: border-box;
      }
      .status {
        border-radius: 8px;
        padding: 0.5rem 0.7rem;
        background: #eef1fb;
        margin: 0.5rem 0;
      }
      .sname {
        font-weight: 700;
      }
      .status[data-s='error'] {
        background: #fbeaea;
      }
      .status[data-s='paused'],
      .status[data-s='waiting-coordinator'],
      .status[data-s='reconnecting'] {
        background: #fdf3e1;
      }
      .status[data-s='training'],
      .status[data-s='validating'] {
        background: #e6f4ea;
      }
      .buttons {
        display: flex;
        flex-wrap: wrap;
        gap: 0.4rem;
        margin: 0.5rem 0;
      }
      button {
        font: inherit;
        padding: 0.45rem 1rem;
        border-radius: 6px;
        border: 1px solid #9aa1b2;
        background: #fff;
      }
      button.primary {
        background: #3b5bdb;
        color: #fff;
        border-color: #3b5bdb;
      }
      .rooms {
        display: flex;
        flex-direction: column;
        gap: 0.3rem;
      }
      .rooms label {
        overflow-wrap: anywhere;
      }
      .big {
        font-size: 1.3rem;
        font-weight: 600;
      }
      .cpu {
        display: inline-block;
        background: #fdf3e1;
        color: #8a5a00;
        font-weight: 600;
        border-radius: 4px;
        padding: 0 0.3rem;
      }
      .err {
        color: #b3261e;
        white-space: pre-wrap;
        overflow-wrap: anywhere;
      }
      .warn {
        color: #8a5a00;
        font-weight: 600;
      }
      .note {
        color: #2b6a3f;
        overflow-wrap: anywhere;
      }
    `,
  ];

  static override properties = { params: { attribute: false }, config: { attribute: false }, snap: { state: true }, choice: { state: true } };

  /** From the URL (or /api/config's defaults); `coordinator` null: pick a live room first. */
  params: SwarmParams | null = null;
  /** `tabswarm serve`'s /api/config (ICE servers, live rooms); null elsewhere. */
  config: ServeConfig | null = null;
  /** The live room picked (index into config.rooms). */
  choice = 0;
  snap: PeerSnapshot = emptySnapshot();
  private peer: SwarmPeer | null = null;
  /** The run as the coordinator reports it. */
  private run = new RunViewStore();
  private progressStep = 0;
  private backend: WorkerComputeBackend | null = null;
  private identity: Identity | null = null;
  private checkpoints: CheckpointStore | null = null;
  private intent: 'none' | 'join' | 'pause' | 'leave' = 'none';
  private reconnecting = false;
  private validating = false;
  private finished = false;
  private busy: Promise<void> = Promise.resolve();
  private started = false;
  private runBT = 0;

  override connectedCallback(): void {
    super.connectedCallback();
    window.tabswarm = {
      snapshot: () => structuredClone(this.snap),
      join: () => this.join(),
      pause: () => this.pause(),
      resume: () => this.join(),
      leave: () => this.leave(),
      params: () => this.params_(),
    };
    // Best effort: the tab may be gone before the write lands (the periodic saves are the guarantee).
    window.addEventListener('pagehide', () => this.closePeer(true));
    // A join link that names the coordinator joins at once (the demo, tests, a shared link): one click less.
    if (!this.started && this.params?.coordinator) {
      this.started = true;
      void this.join();
    }
    this.restate();
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

  /** Recomputes the one UI state from what the peer does and what the user asked. */
  private restate(): void {
    const s = uiState({
      peer: this.peer || this.intent === 'join' ? this.snap.state : null,
      intent: this.intent,
      reconnecting: this.reconnecting,
      validating: this.validating,
      error: this.snap.error !== '',
    });
    if (s !== this.snap.uiState) this.update_({ uiState: s });
    if (this.dataset.state !== s) this.dataset.state = s;
  }

  private logLine(s: string): void {
    const log = [...this.snap.log, `${new Date().toISOString().slice(11, 23)} ${s}`];
    this.update_({ log: log.slice(-200) });
  }

  private fail(e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    this.update_({ error: msg });
    this.logLine(`error: ${msg}`);
    this.restate();
  }

  /** Where to join: the URL's parameters, else the picked live room of /api/config. */
  private target(): { signal: string; room: string; coordinator: string; token?: string } | null {
    const p = this.params;
    if (p?.coordinator) return { signal: p.signal, room: p.room, coordinator: p.coordinator, token: p.token };
    const live = this.config?.rooms[this.choice];
    if (this.config && live) return { signal: this.config.signal, room: live.room, coordinator: live.coordinator, token: p?.token };
    return null;
  }

  /** Join (or resume): one at a time. */
  join(): Promise<void> {
    this.busy = this.busy.then(() => this.join_()).catch((e: unknown) => this.fail(e));
    return this.busy;
  }

  private async join_(): Promise<void> {
    if (this.peer) return;
    const t = this.target();
    if (!t) throw new Error("the join URL has no coordinator=<the coordinator key's fingerprint, 64 hex digits> and no live run was picked");
    this.intent = 'join';
    this.finished = false;
    this.reconnecting = false;
    this.update_({ error: '', state: 'starting' });
    this.restate();
    if (!this.backend) {
      this.backend = await WorkerComputeBackend.start();
      const a = this.backend.adapter;
      this.update_({ adapter: a, cpuAdapter: isCpuAdapter(a) });
    }
    const backend = keptBackend(this.backend);
    this.identity ??= await tabIdentity('peer');
    const identity = this.identity;
    if (!this.checkpoints) {
      // This tab's checkpoints: its own IndexedDB database, by its key slot's id (a reload finds them again).
      const idb = new IdbCheckpointStore(identity.id, (ref, why) =>
        this.logLine(`deleted damaged checkpoint ${ref.runId} stage ${ref.stage} step ${ref.step}: ${why}`),
      );
      this.checkpoints = observedStore(idb, (refs) => this.update_({ checkpoints: refs }));
      this.update_({ checkpoints: await idb.list().catch(() => []) });
    }
    const p = this.params;
    const peer = await SwarmPeer.join({
      url: t.signal,
      room: t.room,
      coordinator: t.coordinator,
      identity,
      checkpoints: this.checkpoints,
      token: t.token,
      rtcFactory: browserRtcFactory(rtcConfig(this.config)),
      compute: async () => backend,
      // Off the main thread (tokenizing is a long task otherwise); in the page only where workers do not exist.
      tokens: (run) => (typeof Worker === 'function' ? tokensInWorker(run) : trainingTokens(run)),
      platform: 'browser',
      throughput: p?.throughput,
      log: (s) => {
        if (p?.log) console.log(s);
        this.logLine(s);
      },
      onState: (state) => {
        this.update_({ state });
        this.restate();
      },
    });
    if (this.intent !== 'join') {
      // Paused or left while joining.
      peer.close();
      return;
    }
    this.peer = peer;
    this.update_({ peerId: peer.peerId, benchmark: peer.throughput, state: peer.state });
    this.wire(peer);
    this.restate();
  }

  private wire(peer: SwarmPeer): void {
    const mine = () => this.peer === peer;
    peer.signaling.on('control', ({ from, msg }) => {
      if (!mine()) return;
      if (msg.type === 'step-report' || msg.type === 'credit' || msg.type === 'run-state') this.run.dispatch({ kind: 'control', from, msg });
      if (msg.type === 'swarm-members')
        this.run.dispatch({ kind: 'membership', epoch: msg.epoch, stages: msg.stages, joins: msg.joins.map((j) => j.peer) });
      if (msg.type === 'validate' && msg.validator === peer.peerId) this.validating = true;
      if (msg.type === 'step-begin' || msg.type === 'shutdown') this.validating = false;
      if (msg.type === 'shutdown') this.finished = true;
      if (msg.type === 'run-state') {
        this.update_({ paused: msg.paused ? { reason: msg.reason, step: msg.step } : null });
        this.logLine(msg.paused ? pausedLine({ reason: msg.reason, step: msg.step }) : `run goes on at step ${msg.step}`);
      }
      this.restate();
    });
    peer.signaling.on('peer-left', ({ peerId }) => mine() && this.run.dispatch({ kind: 'peer-left', peerId }));
    peer.signaling.on('reconnecting', ({ attempt }) => {
      if (!mine()) return;
      this.reconnecting = true;
      this.logLine(`signaling connection lost: reconnecting (attempt ${attempt})`);
      this.restate();
    });
    peer.signaling.on('reconnected', ({ ms }) => {
      if (!mine()) return;
      this.reconnecting = false;
      this.logLine(`signaling reconnected after ${(ms / 1000).toFixed(1)} s`);
      this.restate();
    });
    peer.events.on('state-received', ({ from, step }) => this.note(joinedNote(from, step)));
    peer.events.on('restored', ({ step, digest }) => this.note(restoredNote(step, digest)));
    peer.events.on('assigned', ({ stage, run }) => {
      const r = run.stages[stage];
      this.runBT = run.B * run.T;
      if (this.run.view.runId !== run.runId) this.run = this.freshRun();
      this.run.dispatch({ kind: 'started', run });
      this.update_({ stage, layers: [r.layerStart, r.layerEnd], runId: run.runId, steps: run.steps });
    });
    peer.events.on('progress', (pr: SwarmProgress) => mine() && this.onProgress(pr));
    peer.events.on('error', (e) => mine() && this.fail(e));
    peer.events.on('shutdown', ({ reason }) => {
      this.logLine(`shutdown: ${reason ?? ''}`);
      if (!mine()) return;
      this.finished = true;
      this.restate();
    });
    this.run.onChange(() => mine() && this.onRun());
  }

  private freshRun(): RunViewStore {
    const store = new RunViewStore();
    store.onChange(() => this.onRun());
    return store;
  }

  private onRun(): void {
    const v = this.run.view;
    const credit = v.credit;
    this.update_({
      credit,
      contribution: { ...this.snap.contribution, credits: credit?.credits ?? 0, share: credit?.share ?? 0 },
    });
    this.refreshLoss();
  }

  private onProgress(pr: SwarmProgress): void {
    this.progressStep = pr.step;
    const waitingLeftMs = pr.state === 'waiting-coordinator' ? (pr.coordinatorWaitLeftMs ?? null) : null;
    this.update_({
      waitingLeftMs,
      state: pr.state,
      tokensPerSec: pr.tokensPerSec,
      runTokensPerSec: pr.runTokensPerSec,
      forward: pr.forward,
      backward: pr.backward,
      contribution: { ...this.snap.contribution, tokens: pr.forward * this.runBT },
    });
    this.refreshLoss();
    this.restate();
  }

  /** The run's step and loss: the coordinator's reports only (every tab of a run shows the same numbers). */
  private refreshLoss(): void {
    const v = this.run.view;
    const l = lastLoss(v);
    const runLoss = Number.isFinite(l) ? l : null;
    this.update_({ step: Math.max(this.progressStep, v.step), runStep: v.step, runLoss, loss: runLoss, losses: v.losses });
  }

  /** Leaves the swarm, keeping the worker, key and checkpoints: resume rejoins with the same key. */
  pause(): Promise<void> {
    this.busy = this.busy
      .then(async () => {
        if (this.intent !== 'join') return;
        this.intent = 'pause';
        this.restate();
        await this.closePeer(true);
        this.logLine('paused: left the swarm; the stage worker, key and checkpoints are kept');
        this.restate();
      })
      .catch((e: unknown) => this.fail(e));
    return this.busy;
  }

  /** Leaves the swarm and ends the stage worker. */
  leave(): Promise<void> {
    this.busy = this.busy
      .then(async () => {
        this.intent = 'leave';
        this.restate();
        await this.closePeer(true);
        const b = this.backend;
        this.backend = null;
        await b?.destroy();
        this.logLine('left the swarm; the stage worker is closed');
        this.restate();
      })
      .catch((e: unknown) => this.fail(e));
    return this.busy;
  }

  /** Closes the SwarmPeer; with `save`, after saving the stage as it is now. The worker stays (keptBackend). */
  private async closePeer(save: boolean): Promise<void> {
    const peer = this.peer;
    this.peer = null;
    this.reconnecting = false;
    this.validating = false;
    if (!peer) return;
    // Bounded: a stage busy with a step (or a slow IndexedDB) must not keep a tab that said it left in the swarm,
    // where the run would wait on it for a whole step timeout.
    if (save && !(await peer.saveNow(SAVE_ON_LEAVE_MS))) this.logLine(`checkpoint on leave: not stored within ${SAVE_ON_LEAVE_MS / 1000} s`);
    peer.close();
    this.update_({ state: 'closed' });
  }

  override render() {
    const s = this.snap;
    const a = s.adapter;
    const u = s.uiState;
    const active = u !== 'idle' && u !== 'left' && u !== 'error' && u !== 'paused';
    const canJoin = (u === 'idle' || u === 'left' || u === 'error') && this.target() !== null;
    const rooms = this.config?.rooms ?? [];
    return html`
      <div class="status" data-s=${u}>
        <span class="sname" data-k="state">${u}</span> — ${uiStateLine(u, { finished: this.finished, waitingLeftMs: s.waitingLeftMs })}
      </div>
      ${s.waitingLeftMs !== null ? html`<p class="warn" data-k="waiting">${waitingLine(s.waitingLeftMs)}</p>` : ''}
      ${
        !this.params?.coordinator && this.config && (u === 'idle' || u === 'left' || u === 'error')
          ? rooms.length === 0
            ? html`<p class="warn" data-k="no-rooms">
                No run is live on this server yet. Keep this page open and reload when the organiser starts one.
              </p>`
            : html`<div class="rooms" data-k="rooms">
                ${rooms.map(
                  (r, i) =>
                    html`<label
                      ><input type="radio" name="room" .checked=${i === this.choice} @change=${() => (this.choice = i)} /> ${r.room} · ${r.peers}
                      peer${r.peers === 1 ? '' : 's'}${r.token ? ' · needs a token' : ''}</label
                    >`,
                )}
              </div>`
          : ''
      }
      <div class="buttons">
        ${canJoin ? html`<button id="join" class="primary" @click=${() => this.join()}>${u === 'idle' ? 'Join' : 'Join again'}</button>` : ''}
        ${active ? html`<button id="pause" @click=${() => this.pause()}>Pause</button>` : ''}
        ${u === 'paused' ? html`<button id="resume" class="primary" @click=${() => this.join()}>Resume</button>` : ''}
        ${u !== 'idle' && u !== 'left' ? html`<button id="leave" @click=${() => this.leave()}>Leave</button>` : ''}
      </div>
      ${s.error ? html`<p class="err" data-k="error">${s.error} What to do: ${errorAdvice(s.error)}</p>` : ''}
      ${s.paused ? html`<p class="warn" data-k="paused">${pausedLine(s.paused)}</p>` : ''}
      <dl>
        <dt>run loss</dt>
        <dd class="big" data-k="loss">${s.runLoss === null ? '—' : s.runLoss.toFixed(4)}</dd>
        <dt>step</dt>
        <dd data-k="step">${s.runStep}${s.steps !== null ? ` / ${s.steps}` : ''}</dd>
        <dt>you gave</dt>
        <dd data-k="contribution">
          ${s.contribution.tokens.toLocaleString()} tokens
          ${s.credit ? ` · ${flopsLabel(s.credit.credits)} credits (${shareLabel(s.credit.share)} of the run)` : ' · credits after the first validated step'}
        </dd>
        <dt>adapter</dt>
        <dd data-k="adapter">
          ${a ? `${a.vendor} ${a.description || a.architecture} [${a.key}]` : '—'}
          ${s.cpuAdapter ? html`<span class="cpu" data-k="cpu" title="a software renderer: WebGPU runs on the CPU, slowly">CPU fallback — no GPU</span>` : ''}
        </dd>
        <dt>stage</dt>
        <dd data-k="stage">
          ${s.stage === null || s.layers === null ? '—' : `${s.stage} (${layersLabel(s.layers[0], s.layers[1])})${s.runId ? ` of run ${s.runId}` : ''}`}
        </dd>
        <dt>checkpoints</dt>
        <dd data-k="checkpoints">${checkpointsLine(s.checkpoints)}</dd>
        <dt>throughput</dt>
        <dd data-k="throughput">${s.runTokensPerSec ? `${s.tokensPerSec.toFixed(0)} tokens/s here · ${s.runTokensPerSec.toFixed(0)} swarm` : '—'}</dd>
      </dl>
      <tabswarm-swarm-columns .view=${this.run.view} .me=${s.peerId ?? ''} .myState=${u}></tabswarm-swarm-columns>
      <tabswarm-loss-chart .values=${s.losses} label="run loss"></tabswarm-loss-chart>
      ${s.notes.map((n) => html`<p class="note" data-k="note">${n}</p>`)}
      <details>
        <summary>details and log</summary>
        <dl>
          <dt>swarm</dt>
          <dd>${this.target()?.signal ?? '—'} · room ${this.target()?.room ?? '—'}${s.peerId ? ` · peer ${s.peerId}` : ''}</dd>
          <dt>benchmark</dt>
          <dd>${s.benchmark ? `${s.benchmark.toFixed(0)} tokens/s` : '—'}</dd>
          <dt>microbatches</dt>
          <dd>${s.forward} forward · ${s.backward} backward</dd>
          <dt>wire</dt>
          <dd>${wireFigures(this.run.view)}</dd>
          <dt>credits</dt>
          <dd data-k="credits">${creditLine(s.credit)}</dd>
        </dl>
        <pre>${s.log.join('\n')}</pre>
      </details>
    `;
  }
}

if (!customElements.get('tabswarm-peer')) customElements.define('tabswarm-peer', TabswarmPeer);
