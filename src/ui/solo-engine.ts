// The single-tab engine (the contributor page without a swarm): the engine worker trains alone and the page shows
// the adapter, what start-up is doing (corpus, GPU, each matmul shape tuned or loaded from the tab's stored
// tuning), step, loss and throughput. One worker at a time: Stop terminates it (after releasing its GPU device), a
// new Start makes a fresh one, which loads the tuning the previous one stored instead of re-timing it.
import * as Comlink from 'comlink';
import { LitElement, css, html } from 'lit';
import { figureListStyles } from './figure-list';
import type { EngineInfo, EngineProgress, EngineWorkerApi } from '../worker/engine-worker';
import './loss-chart';
import { isCpuAdapter } from './peer-ui-state';
import { errorAdvice } from './error-advice';
import { CORPUS_URL } from './swarm-params';
import { soloParams } from './solo-params';

export class TabswarmEngine extends LitElement {
  static override styles = [
    figureListStyles,
    css`
      :host {
        display: block;
      }
      .err {
        color: #b3261e;
        white-space: pre-wrap;
      }
      .cpu {
        background: #fdf3e1;
        color: #8a5a00;
        font-weight: 600;
        border-radius: 4px;
        padding: 0 0.3rem;
      }
      button {
        font: inherit;
        padding: 0.45rem 1rem;
      }
      progress {
        width: 100%;
      }
    `,
  ];

  static override properties = {
    info: { state: true },
    step: { state: true },
    loss: { state: true },
    tps: { state: true },
    error: { state: true },
    running: { state: true },
    losses: { state: true },
    progress: { state: true },
  };

  info: EngineInfo | null = null;
  step = 0;
  loss = Number.NaN;
  tps = 0;
  error = '';
  running = false;
  losses: number[] = [];
  progress: EngineProgress | null = null;
  private worker: Worker | null = null;
  private api: Comlink.Remote<EngineWorkerApi> | null = null;
  /** Bumped by every Start and Stop: a loop of an older run stops at its next step. */
  private generation = 0;

  private async start(): Promise<void> {
    await this.stop();
    const gen = ++this.generation;
    this.running = true;
    this.error = '';
    this.step = 0;
    this.loss = Number.NaN;
    this.losses = [];
    this.info = null;
    const o = soloParams();
    try {
      this.worker = new Worker(new URL('../worker/engine-worker.ts', import.meta.url), { type: 'module', name: 'tabswarm-engine' });
      const api = (this.api = Comlink.wrap<EngineWorkerApi>(this.worker));
      this.info = await api.start(
        { corpusUrl: CORPUS_URL, model: o.model, B: o.B, seed: 1337, schedule: o.schedule },
        Comlink.proxy((p: EngineProgress) => {
          if (gen === this.generation) this.progress = p;
        }),
      );
      while (gen === this.generation && this.step < o.steps) {
        const t0 = performance.now();
        const [r] = await api.train(1);
        if (gen !== this.generation) break;
        this.tps = (o.B * o.model.block_size) / ((performance.now() - t0) / 1000);
        this.step = r.step + 1;
        this.loss = r.loss;
        this.losses = [...this.losses, r.loss];
      }
    } catch (e) {
      if (gen === this.generation) this.error = (e as Error).message;
    }
    if (gen === this.generation) {
      this.running = false;
      await this.stop();
    }
  }

  /** Ends the current worker (its GPU device released first, bounded). */
  private async stop(): Promise<void> {
    this.generation++;
    this.running = false;
    const [w, api] = [this.worker, this.api];
    this.worker = null;
    this.api = null;
    if (!w || !api) return;
    await Promise.race([api.destroy().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    api[Comlink.releaseProxy]();
    w.terminate();
  }

  override render() {
    const a = this.info?.adapter;
    const p = this.progress;
    const t = this.info?.tuning;
    return html`
      <button id="start" @click=${() => (this.running ? this.stop() : this.start())}>${this.running ? 'Stop' : 'Start training'}</button>
      ${
        this.running && p && p.phase !== 'ready'
          ? html`<p data-k="progress">${p.text}${p.total > 0 ? html`<br /><progress max=${p.total} value=${p.done}></progress>` : ''}</p>`
          : ''
      }
      <dl>
        <dt>adapter</dt>
        <dd data-k="adapter">
          ${a ? `${a.vendor} ${a.description || a.architecture} [${a.key}]` : '—'}
          ${a && isCpuAdapter(a) ? html`<span class="cpu" data-k="cpu">CPU fallback — no GPU</span>` : ''}
        </dd>
        <dt>tuning</dt>
        <dd data-k="tuning">${t ? `${t.loaded} shapes loaded from this tab's stored tuning, ${t.timed} timed now` : '—'}</dd>
        <dt>parameters</dt>
        <dd>${this.info ? this.info.params.toLocaleString() : '—'}</dd>
        <dt>step</dt>
        <dd data-k="step">${this.step}</dd>
        <dt>loss</dt>
        <dd data-k="loss">${Number.isNaN(this.loss) ? '—' : this.loss.toFixed(4)}</dd>
        <dt>throughput</dt>
        <dd>${this.tps ? `${this.tps.toFixed(0)} tokens/s` : '—'}</dd>
      </dl>
      <tabswarm-loss-chart .values=${this.losses}></tabswarm-loss-chart>
      ${this.error ? html`<p class="err" data-k="error">${this.error} What to do: ${errorAdvice(this.error)}</p>` : ''}
    `;
  }
}

if (!customElements.get('tabswarm-engine')) customElements.define('tabswarm-engine', TabswarmEngine);
