// Coordinator page (coordinator.html): runs the swarm's Coordinator in this tab (SwarmSignaling role 'coordinator')
// for a run configured from the URL or the form, shows the peers per stage (id, platform, throughput, state) and the
// loss curve, and starts the run. Contributor tabs join with index.html?signal=<same url>&room=<same room>; tabs
// opened before the run wait in the room and announce themselves when the coordinator arrives.
//
// URL parameters (all optional, prefill the form): signal, room, stages, steps, M, B, n_layer, n_embd, n_head,
// block, lr, seed, minPeers, autostart=1 (start at load).
import { LitElement, css, html } from 'lit';
import { Coordinator, type StepReport } from '../coordinator/coordinator';
import { evenStages, parseRunConfig, type RunConfig } from '../protocol/run-config';
import { DEFAULT_OPTIMIZER } from '../model/stage';
import { CharTokenizer } from '../model/tokenizer';
import { SignalingClient } from '../net/signaling-client';
import { swarmControl, type SwarmSignaling } from '../protocol/control-codec';
import { broadcastStepReports } from '../swarm/step-reports';
import './loss-chart';
import { CORPUS_URL, DEFAULT_ROOM, defaultSignalUrl, layersLabel } from './swarm-params';

export interface RunForm {
  signal: string;
  room: string;
  stages: number;
  steps: number;
  M: number;
  B: number;
  n_layer: number;
  n_embd: number;
  n_head: number;
  block: number;
  lr: number;
  seed: number;
  minPeers: number;
}

export interface PeerRow {
  id: string;
  platform: string;
  throughput: number;
  stage: number | null;
  state: string;
  /** Microbatches this peer reported (mb-done on the first stage, mb-loss on the last). */
  microbatches: number;
}

export interface CoordinatorSnapshot {
  phase: 'idle' | 'connecting' | 'waiting' | 'training' | 'finished' | 'error';
  step: number;
  steps: number;
  losses: number[];
  reports: StepReport[];
  peers: PeerRow[];
  error: string;
}

declare global {
  interface Window {
    tabswarmCoordinator?: { snapshot(): CoordinatorSnapshot; start(): Promise<void> };
  }
}

const NUM_FIELDS = ['stages', 'steps', 'M', 'B', 'n_layer', 'n_embd', 'n_head', 'block', 'lr', 'seed', 'minPeers'] as const;

export function formFromUrl(search: string = location.search): RunForm {
  const q = new URLSearchParams(search);
  const f: RunForm = {
    signal: q.get('signal') || defaultSignalUrl(),
    room: q.get('room') || DEFAULT_ROOM,
    stages: 2, steps: 200, M: 4, B: 8, n_layer: 4, n_embd: 64, n_head: 4, block: 64, lr: 3e-3, seed: 1337, minPeers: 2,
  };
  for (const k of NUM_FIELDS) {
    const v = q.get(k);
    if (v !== null && v !== '' && Number.isFinite(Number(v))) f[k] = Number(v);
  }
  return f;
}

export function runFromForm(f: RunForm, vocab: number): RunConfig {
  const schedule = { lr: f.lr, minLr: f.lr / 10, warmup: Math.min(10, Math.floor(f.steps / 10)), decaySteps: f.steps };
  return parseRunConfig({
    runId: `run-${Date.now().toString(36)}`,
    model: { n_layer: f.n_layer, n_head: f.n_head, n_embd: f.n_embd, vocab_size: vocab, block_size: f.block },
    stages: evenStages(f.n_layer, f.stages),
    B: f.B,
    T: f.block,
    M: f.M,
    steps: f.steps,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: f.lr },
    seed: f.seed,
  });
}

export class TabswarmCoordinator extends LitElement {
  static override styles = css`
    :host { display: block; }
    form { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: 0.5rem 1rem; margin-bottom: 1rem; }
    label { display: flex; flex-direction: column; font-size: 0.8rem; color: #56607a; }
    label.wide { grid-column: span 2; }
    input { font: inherit; padding: 0.2rem 0.3rem; }
    button { font: inherit; padding: 0.4rem 1rem; }
    table { border-collapse: collapse; width: 100%; margin: 0.5rem 0; font-size: 0.9rem; }
    th, td { text-align: left; padding: 0.2rem 0.6rem; border-bottom: 1px solid #e3e6ef; }
    th { color: #56607a; font-weight: 500; }
    h3 { margin: 1rem 0 0.3rem; font-size: 1rem; }
    .err { color: #b3261e; white-space: pre-wrap; }
    .muted { color: #56607a; }
  `;

  static override properties = { form: { state: true }, snap: { state: true } };

  form: RunForm = formFromUrl();
  snap: CoordinatorSnapshot = { phase: 'idle', step: 0, steps: 0, losses: [], reports: [], peers: [], error: '' };
  private sig: SwarmSignaling | null = null;
  private coordinator: Coordinator | null = null;
  private run: RunConfig | null = null;
  private readonly rows = new Map<string, PeerRow>();

  override connectedCallback(): void {
    super.connectedCallback();
    window.tabswarmCoordinator = { snapshot: () => structuredClone(this.snap), start: () => this.start() };
    window.addEventListener('pagehide', () => this.stop());
    if (new URLSearchParams(location.search).get('autostart') === '1') void this.start();
  }

  private set(p: Partial<CoordinatorSnapshot>): void {
    this.snap = { ...this.snap, ...p };
  }

  private row(id: string): PeerRow {
    let r = this.rows.get(id);
    if (!r) this.rows.set(id, (r = { id, platform: '?', throughput: 0, stage: null, state: 'in room', microbatches: 0 }));
    return r;
  }

  private touch(): void {
    this.set({ peers: [...this.rows.values()].map((r) => ({ ...r })) });
  }

  async start(): Promise<void> {
    if (this.snap.phase !== 'idle' && this.snap.phase !== 'error' && this.snap.phase !== 'finished') return;
    this.rows.clear();
    this.set({ phase: 'connecting', error: '', losses: [], reports: [], step: 0, peers: [] });
    try {
      const f = this.form;
      const res = await fetch(CORPUS_URL);
      if (!res.ok) throw new Error(`corpus ${CORPUS_URL}: HTTP ${res.status}`);
      const vocab = CharTokenizer.fromCorpus(await res.text()).vocabSize;
      const run = runFromForm(f, vocab);
      this.run = run;
      const sig = await SignalingClient.connect(f.signal, { room: f.room, peerId: 'coordinator', role: 'coordinator', control: swarmControl });
      this.sig = sig;
      // Subscribe before any peer can announce itself (tabs waiting in the room announce when we arrive).
      const coordinator = new Coordinator(sig, { run, minPeers: f.minPeers, log: (s) => console.log(s) });
      this.coordinator = coordinator;
      broadcastStepReports(coordinator, sig);
      this.watch(sig, coordinator);
      for (const [id, role] of sig.peers) if (role === 'peer') this.row(id);
      this.set({ phase: 'waiting', steps: run.steps });
      this.touch();
      const reports = await coordinator.finished();
      for (const r of this.rows.values()) if (r.state !== 'gone') r.state = 'finished';
      this.set({ phase: 'finished', reports });
      this.touch();
    } catch (e) {
      this.set({ phase: 'error', error: (e as Error).message });
    } finally {
      this.coordinator?.close();
      this.sig?.close();
      this.coordinator = null;
      this.sig = null;
    }
  }

  private watch(sig: SwarmSignaling, c: Coordinator): void {
    sig.on('peer-joined', (p) => {
      if (p.role === 'peer') {
        this.row(p.peerId);
        this.touch();
      }
    });
    sig.on('peer-left', (p) => {
      const r = this.rows.get(p.peerId);
      if (r) {
        r.state = 'gone';
        this.touch();
      }
    });
    sig.on('control', ({ from, msg }) => {
      const r = this.row(from);
      switch (msg.type) {
        case 'peer-info':
          r.platform = msg.platform;
          r.throughput = msg.throughput ?? 0;
          r.state = 'announced';
          break;
        case 'swarm-ready':
          if (r.state !== 'training') r.state = 'ready';
          break;
        case 'mb-done':
          if (r.stage === 0) r.microbatches++;
          break;
        case 'mb-loss':
          if (r.stage !== 0) r.microbatches++;
          break;
        case 'status':
          if (msg.state === 'error') r.state = `error: ${msg.detail ?? ''}`.slice(0, 200);
          break;
        default:
          return;
      }
      this.touch();
    });
    c.events.on('assigned', ({ peerId, stage }) => {
      const r = this.row(peerId);
      r.stage = stage;
      r.state = 'assigned';
      this.touch();
    });
    c.events.on('membership', ({ stages, joins }) => {
      stages.forEach((ps) => ps.forEach((p) => {
        const r = this.row(p);
        if (r.state !== 'training') r.state = joins.includes(p) ? 'joining (state copy)' : 'linking';
      }));
      this.touch();
    });
    c.events.on('vanished', ({ peerId }) => {
      this.row(peerId).state = 'gone';
      this.touch();
    });
    c.events.on('step', (rep) => {
      for (const p of rep.members.flat()) this.row(p).state = 'training';
      const losses = [...this.snap.losses, rep.loss];
      this.set({ phase: 'training', step: rep.step + 1, losses, reports: [...this.snap.reports, rep] });
      this.touch();
    });
  }

  private stop(): void {
    this.coordinator?.close();
    this.sig?.close();
  }

  private field(k: keyof RunForm, label: string, wide = false) {
    const v = this.form[k];
    return html`<label class=${wide ? 'wide' : ''}>${label}<input name=${k} .value=${String(v)} ?disabled=${this.snap.phase !== 'idle' && this.snap.phase !== 'finished' && this.snap.phase !== 'error'}
      @change=${(e: Event) => {
        const s = (e.target as HTMLInputElement).value;
        this.form = { ...this.form, [k]: typeof v === 'number' ? Number(s) : s };
      }} /></label>`;
  }

  override render() {
    const s = this.snap;
    const busy = s.phase === 'connecting' || s.phase === 'waiting' || s.phase === 'training';
    const S = this.run?.stages.length ?? this.form.stages;
    const contributor = `${location.origin}/index.html?${new URLSearchParams({ signal: this.form.signal, room: this.form.room })}`;
    const last = s.reports[s.reports.length - 1];
    return html`
      <form @submit=${(e: Event) => { e.preventDefault(); void this.start(); }}>
        ${this.field('signal', 'signaling server', true)} ${this.field('room', 'room')}
        ${this.field('stages', 'stages')} ${this.field('minPeers', 'min peers')} ${this.field('steps', 'steps')}
        ${this.field('M', 'microbatches M')} ${this.field('B', 'sequences B')} ${this.field('n_layer', 'n_layer')}
        ${this.field('n_embd', 'n_embd')} ${this.field('n_head', 'n_head')} ${this.field('block', 'block (T)')}
        ${this.field('lr', 'learning rate')} ${this.field('seed', 'seed')}
        <button type="submit" ?disabled=${busy}>${busy ? 'Running…' : 'Start run'}</button>
      </form>
      <p class="muted">Contributors open <a href=${contributor} target="_blank">${contributor}</a></p>
      <p data-k="phase">phase <b>${s.phase}</b> · step ${s.step}${s.steps ? ` / ${s.steps}` : ''}${last ? html` · loss <b data-k="loss">${last.loss.toFixed(4)}</b> · ${last.ms.toFixed(0)} ms/step` : ''}${this.run ? ` · run ${this.run.runId}` : ''}</p>
      ${Array.from({ length: S }, (_, st) => this.stageTable(st))}
      ${this.unassigned()}
      <tabswarm-loss-chart .values=${s.losses}></tabswarm-loss-chart>
      ${s.error ? html`<p class="err">${s.error}</p>` : ''}
    `;
  }

  private table(rows: PeerRow[]) {
    return html`<table>
      <tr><th>peer</th><th>platform</th><th>benchmark</th><th>microbatches</th><th>state</th></tr>
      ${rows.map((r) => html`<tr data-peer=${r.id}><td>${r.id}</td><td>${r.platform}</td><td>${r.throughput ? `${r.throughput.toFixed(0)} tok/s` : '—'}</td><td>${r.microbatches}</td><td>${r.state}</td></tr>`)}
    </table>`;
  }

  private stageTable(st: number) {
    const r = this.run?.stages[st];
    const rows = this.snap.peers.filter((p) => p.stage === st);
    return html`<h3>stage ${st}${r ? ` (${layersLabel(r.layerStart, r.layerEnd)})` : ''}</h3>${rows.length ? this.table(rows) : html`<p class="muted">no peers yet</p>`}`;
  }

  private unassigned() {
    const rows = this.snap.peers.filter((p) => p.stage === null);
    return rows.length ? html`<h3>in the room, not assigned</h3>${this.table(rows)}` : '';
  }
}

if (!customElements.get('tabswarm-coordinator')) customElements.define('tabswarm-coordinator', TabswarmCoordinator);
