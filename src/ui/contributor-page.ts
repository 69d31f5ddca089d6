// Contributor page. With swarm parameters (?signal=ws://host:port&room=ROOM, see src/ui/swarm-params.ts) this tab
// joins the swarm as a browser peer (<tabswarm-peer>, src/ui/swarm-peer-view.ts). Without them it is the single-tab
// engine: the engine worker trains alone and the page shows the adapter, step, loss and throughput.
import * as Comlink from 'comlink';
import { LitElement, css, html } from 'lit';
import type { EngineInfo, EngineWorkerApi } from '../worker/engine-worker';
import { swarmParams } from './swarm-params';
import { TabswarmPeer } from './swarm-peer-view';

class TabswarmEngine extends LitElement {
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
    .err {
      color: #b3261e;
      white-space: pre-wrap;
    }
    button {
      font: inherit;
      padding: 0.4rem 1rem;
    }
    svg {
      width: 100%;
      height: 120px;
      background: #f6f7fb;
      border-radius: 6px;
    }
  `;

  static override properties = {
    info: { state: true },
    step: { state: true },
    loss: { state: true },
    tps: { state: true },
    error: { state: true },
    running: { state: true },
    losses: { state: true },
  };

  info: EngineInfo | null = null;
  step = 0;
  loss = Number.NaN;
  tps = 0;
  error = '';
  running = false;
  losses: number[] = [];
  private api?: Comlink.Remote<EngineWorkerApi>;

  private async start(): Promise<void> {
    this.running = true;
    this.error = '';
    try {
      const worker = new Worker(new URL('../worker/engine-worker.ts', import.meta.url), { type: 'module' });
      this.api = Comlink.wrap<EngineWorkerApi>(worker);
      const block = 64;
      this.info = await this.api.start({
        corpusUrl: '/tinyshakespeare.txt',
        model: { n_layer: 4, n_head: 4, n_embd: 128, block_size: block },
        B: 12,
        seed: 1337,
        schedule: { lr: 1e-3, minLr: 1e-4, warmup: 100, decaySteps: 2000 },
      });
      while (this.running && this.step < 2000) {
        const t0 = performance.now();
        const [r] = await this.api.train(1);
        this.tps = (12 * block) / ((performance.now() - t0) / 1000);
        this.step = r.step + 1;
        this.loss = r.loss;
        this.losses = [...this.losses, r.loss];
      }
    } catch (e) {
      this.error = (e as Error).message;
    }
    this.running = false;
  }

  private chart() {
    const ls = this.losses;
    if (ls.length < 2) return html``;
    const max = Math.max(...ls);
    const min = Math.min(...ls);
    const pts = ls.map((l, i) => `${(i / (ls.length - 1)) * 100},${100 - ((l - min) / Math.max(max - min, 1e-9)) * 100}`).join(' ');
    return html`<svg viewBox="0 0 100 100" preserveAspectRatio="none">
      <polyline fill="none" stroke="#3b5bdb" stroke-width="1" vector-effect="non-scaling-stroke" points=${pts}></polyline>
    </svg>`;
  }

  override render() {
    const a = this.info?.adapter;
    return html`
      <button @click=${() => (this.running ? (this.running = false) : this.start())}>${this.running ? 'Stop' : 'Start training'}</button>
      <dl>
        <dt>adapter</dt>
        <dd>${a ? `${a.vendor} ${a.architecture} ${a.description} [${a.key}]` : '—'}</dd>
        <dt>parameters</dt>
        <dd>${this.info ? this.info.params.toLocaleString() : '—'}</dd>
        <dt>step</dt>
        <dd>${this.step}</dd>
        <dt>loss</dt>
        <dd>${Number.isNaN(this.loss) ? '—' : this.loss.toFixed(4)}</dd>
        <dt>throughput</dt>
        <dd>${this.tps ? `${this.tps.toFixed(0)} tokens/s` : '—'}</dd>
      </dl>
      ${this.chart()} ${this.error ? html`<p class="err">${this.error}</p>` : ''}
    `;
  }
}

customElements.define('tabswarm-engine', TabswarmEngine);

const swarm = swarmParams();
if (swarm) {
  const view = new TabswarmPeer();
  view.params = swarm;
  const engine = document.querySelector('tabswarm-engine');
  if (engine) engine.replaceWith(view);
  else document.body.append(view);
  const lead = document.querySelector('p.lead');
  if (lead)
    lead.textContent = `This tab is a swarm peer: it trains one pipeline stage of a GPT with the other tabs of room "${swarm.room}", over WebRTC.`;
}
