// A time-series chart on uPlot (axes, hover cursor, legend with the values under the cursor) as a lit element: its
// CSS inlined into the element's shadow root, its width following the element's (ResizeObserver), the data replaced
// with setData (no re-creation per update). x is the step; each series is one y line; a series may be mostly null
// (e.g. one validation point at the end): points are drawn so a lone value shows.
import { LitElement, css, html, unsafeCSS, type PropertyValues } from 'lit';
import uPlot from 'uplot';
import uplotCss from 'uplot/dist/uPlot.min.css?inline';

export interface ChartSeries {
  label: string;
  stroke: string;
  /** 'y' (left axis, default) or 'y2' (right axis). */
  scale?: 'y' | 'y2';
}

export class TabswarmUplot extends LitElement {
  static override styles = [
    unsafeCSS(uplotCss),
    css`
      :host {
        display: block;
        min-width: 0;
      }
      .box {
        width: 100%;
        min-height: 180px;
      }
      .empty {
        font-size: 0.8rem;
        color: #56607a;
      }
    `,
  ];

  static override properties = { series: { attribute: false }, data: { attribute: false }, yLabel: {}, y2Label: {}, xLabel: {} };

  series: ChartSeries[] = [];
  /** [xs, ...ys]: one array per series, aligned with xs (null: no value at that x). */
  data: (number | null)[][] = [[]];
  yLabel = '';
  y2Label = '';
  xLabel = 'step';
  private plot: uPlot | null = null;
  private resize: ResizeObserver | null = null;

  override render() {
    return html`<div class="box"></div>`;
  }

  private box(): HTMLElement | null {
    return this.renderRoot.querySelector('.box');
  }

  private width(): number {
    return Math.max(200, Math.floor(this.box()?.clientWidth ?? 300));
  }

  private create(): void {
    const el = this.box();
    if (!el) return;
    this.plot?.destroy();
    const y2 = this.series.some((s) => s.scale === 'y2');
    const opts: uPlot.Options = {
      width: this.width(),
      height: 180,
      scales: { x: { time: false } },
      axes: [
        { label: this.xLabel, size: 36 },
        { label: this.yLabel, scale: 'y', size: 50 },
        ...(y2 ? [{ label: this.y2Label, scale: 'y2', side: 1 as const, grid: { show: false }, size: 50 }] : []),
      ],
      series: [
        { label: this.xLabel },
        ...this.series.map((s) => ({ label: s.label, stroke: s.stroke, scale: s.scale ?? 'y', width: 1.5, points: { show: true, size: 5 } })),
      ],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
    this.plot = new uPlot(opts, this.data as uPlot.AlignedData, el);
  }

  protected override firstUpdated(): void {
    this.create();
    this.resize = new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: 180 }));
    const el = this.box();
    if (el) this.resize.observe(el);
  }

  protected override updated(changed: PropertyValues<this>): void {
    if (!this.plot) return;
    if (changed.has('series') || changed.has('yLabel') || changed.has('y2Label')) this.create();
    else if (changed.has('data')) this.plot.setData(this.data as uPlot.AlignedData);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.resize?.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}

if (!customElements.get('tabswarm-uplot')) customElements.define('tabswarm-uplot', TabswarmUplot);
