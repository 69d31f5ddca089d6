// A small live loss chart: an inline SVG polyline over the values, min/max labelled.
import { LitElement, css, html, svg } from 'lit';

export class TabswarmLossChart extends LitElement {
  static override styles = css`
    :host {
      display: block;
    }
    figure {
      margin: 0.5rem 0;
    }
    svg {
      width: 100%;
      height: 120px;
      background: #f6f7fb;
      border-radius: 6px;
      display: block;
    }
    figcaption {
      font-size: 0.8rem;
      color: #56607a;
      display: flex;
      justify-content: space-between;
    }
  `;

  static override properties = { values: { attribute: false }, label: {} };

  values: number[] = [];
  label = 'loss';

  override render() {
    const ls = this.values.filter((v) => Number.isFinite(v));
    if (ls.length === 0)
      return html`<figure>
        <svg viewBox="0 0 100 100"></svg>
        <figcaption><span>${this.label}: no steps yet</span></figcaption>
      </figure>`;
    const max = Math.max(...ls);
    const min = Math.min(...ls);
    const n = ls.length;
    const x = (i: number) => (n === 1 ? 50 : (i / (n - 1)) * 100);
    const y = (l: number) => 95 - ((l - min) / Math.max(max - min, 1e-9)) * 90;
    const pts = ls.map((l, i) => `${x(i).toFixed(2)},${y(l).toFixed(2)}`).join(' ');
    return html`<figure>
      <svg viewBox="0 0 100 100" preserveAspectRatio="none" role="img" aria-label="${this.label} curve">
        ${svg`<polyline fill="none" stroke="#3b5bdb" stroke-width="1.5" vector-effect="non-scaling-stroke" points=${pts}></polyline>`}
        ${n === 1 ? svg`<circle cx="50" cy=${y(ls[0])} r="1.5" fill="#3b5bdb"></circle>` : ''}
      </svg>
      <figcaption>
        <span>${this.label}: ${ls[0].toFixed(4)} → ${ls[n - 1].toFixed(4)} (${n} steps)</span
        ><span>min ${min.toFixed(4)} · max ${max.toFixed(4)}</span>
      </figcaption>
    </figure>`;
  }
}

if (!customElements.get('tabswarm-loss-chart')) customElements.define('tabswarm-loss-chart', TabswarmLossChart);
