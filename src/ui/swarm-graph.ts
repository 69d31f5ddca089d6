// The coordinator page's live swarm graph (SVG): one column per pipeline stage, its peers as nodes coloured by state
// (src/coordinator/run-view.ts PeerState), edges between neighbouring stages' live peers weighted by the traffic
// between them, and the peers in the room that have no stage yet in a row of their own ("waiting"). The view has
// microbatch counts per peer (first and last stage), not per link: a link's traffic is estimated as its endpoints'
// shares of their stages' microbatches (what each replica sent and received), and the boundary's total is the run's
// pipeline bytes (activations + their gradients). Scales to the page's width (a 390 px phone too).
import { LitElement, css, html, svg } from 'lit';
import type { PeerState, PeerView, RunView } from '../coordinator/run-view';

export const STATE_COLOURS: Record<PeerState, string> = {
  'in room': '#c3c8d6',
  joined: '#8fa3d9',
  assigned: '#6c8ef5',
  linking: '#e8a33d',
  'copying state': '#d9822b',
  ready: '#58b07a',
  'forward/backward': '#3b5bdb',
  reducing: '#7048e8',
  applied: '#2f9e44',
  error: '#e03131',
  gone: '#868e96',
};

const W = 360;
const ROW = 34;
const TOP = 26;
const R = 11;

const short = (id: string) => id.slice(0, 6);
const live = (p: PeerView) => p.state !== 'gone' && p.state !== 'error';

/** Estimated share of a stage's traffic per peer: its microbatches, or (middle stages, none counted) an even split. */
function shares(ps: PeerView[]): Map<string, number> {
  const total = ps.reduce((a, p) => a + p.microbatches, 0);
  return new Map(ps.map((p) => [p.id, total > 0 ? p.microbatches / total : 1 / Math.max(ps.length, 1)]));
}

export class TabswarmSwarmGraph extends LitElement {
  static override styles = css`
    :host {
      display: block;
    }
    svg {
      width: 100%;
      height: auto;
      display: block;
      background: #f6f7fb;
      border-radius: 6px;
    }
    .legend {
      display: flex;
      flex-wrap: wrap;
      gap: 0.2rem 0.7rem;
      font-size: 0.75rem;
      color: #56607a;
      margin-top: 0.3rem;
    }
    .dot {
      display: inline-block;
      width: 0.7rem;
      height: 0.7rem;
      border-radius: 50%;
      vertical-align: -0.1rem;
      margin-right: 0.2rem;
    }
  `;

  static override properties = { view: { attribute: false } };

  view: RunView | null = null;

  override render() {
    const v = this.view;
    if (!v) return html``;
    const S = Math.max(v.stages.length, 1);
    const colW = W / S;
    const byStage = Array.from({ length: S }, (_, s) => v.peers.filter((p) => p.stage === s));
    const waiting = v.peers.filter((p) => p.stage === null && p.state !== 'gone');
    const rows = Math.max(1, ...byStage.map((ps) => ps.length));
    const waitY = TOP + rows * ROW + 18;
    const H = waiting.length ? waitY + 30 : TOP + rows * ROW + 4;
    const pos = new Map<string, { x: number; y: number }>();
    byStage.forEach((ps, s) => ps.forEach((p, i) => pos.set(p.id, { x: colW * (s + 0.5), y: TOP + ROW * (i + 0.5) })));
    const wStep = W / Math.max(waiting.length, 1);
    waiting.forEach((p, i) => pos.set(p.id, { x: wStep * (i + 0.5), y: waitY + 8 }));
    const pipeBytes = v.wire.activations + v.wire.activation_grads;
    const edges = [];
    for (let s = 0; s + 1 < S; s++) {
      const a = byStage[s].filter(live);
      const b = byStage[s + 1].filter(live);
      const sa = shares(a);
      const sb = shares(b);
      for (const p of a)
        for (const q of b) {
          const share = (sa.get(p.id) ?? 0) * (sb.get(q.id) ?? 0);
          const from = pos.get(p.id);
          const to = pos.get(q.id);
          if (!from || !to) continue;
          const est = (pipeBytes * share) / Math.max(S - 1, 1);
          edges.push(
            svg`<line data-edge="${p.id}>${q.id}" x1=${from.x + R} y1=${from.y} x2=${to.x - R} y2=${to.y} stroke="#3b5bdb" stroke-opacity=${0.25 + 0.6 * share}
              stroke-width=${(1 + 5 * share).toFixed(2)}><title>${short(p.id)} → ${short(q.id)}: ~${(est / 1e6).toFixed(2)} MB (estimated)</title></line>`,
          );
        }
    }
    const node = (p: PeerView) => {
      const at = pos.get(p.id);
      if (!at) return '';
      return svg`<g data-node=${p.id} data-state=${p.state}>
        <circle cx=${at.x} cy=${at.y} r=${R} fill=${STATE_COLOURS[p.state]} stroke="#1d2433" stroke-width="0.8"></circle>
        <text x=${at.x} y=${at.y + R + 10} font-size="9" text-anchor="middle" fill="#1d2433">${short(p.id)}</text>
        <title>${p.id} · ${p.platform} · ${p.state}${p.detail ? `: ${p.detail}` : ''} · ${p.microbatches} microbatches</title>
      </g>`;
    };
    const heads = Array.from(
      { length: S },
      (_, s) =>
        svg`<text x=${colW * (s + 0.5)} y="14" font-size="11" text-anchor="middle" fill="#56607a">stage ${s}${
          v.stages[s] ? ` (L${v.stages[s].layerStart}–${v.stages[s].layerEnd - 1})` : ''
        }</text>`,
    );
    const seen = [...new Set(v.peers.map((p) => p.state))];
    return html`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="swarm graph: ${v.peers.length} peers in ${S} stages" data-k="swarm-graph">
        ${heads} ${edges} ${v.peers.map(node)}
        ${waiting.length ? svg`<text x="4" y=${waitY - 6} font-size="10" fill="#56607a">waiting in the room (no stage yet)</text>` : ''}
      </svg>
      <div class="legend">
        ${seen.map((st) => html`<span><span class="dot" style="background:${STATE_COLOURS[st]}"></span>${st}</span>`)}
        ${S > 1 ? html`<span>edges: traffic between neighbouring stages (estimated from microbatch shares)</span>` : ''}
      </div>`;
  }
}

if (!customElements.get('tabswarm-swarm-graph')) customElements.define('tabswarm-swarm-graph', TabswarmSwarmGraph);
