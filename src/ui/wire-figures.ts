// Wire accounting on the pages: bytes per trained token per category and how many times fewer bytes than today's
// fp32 wire sent for the same steps (src/coordinator/run-view.ts: wireBytesPerToken, fp32Ratios). One rendering for
// the coordinator page and the contributor page.
import { html } from 'lit';
import { fp32Ratios, wireBytesPerToken, type RunView } from '../coordinator/run-view';

const bytes = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const times = (n: number) => (Number.isFinite(n) ? `${n >= 10 ? n.toFixed(0) : n.toFixed(2)}×` : '—');

/** The wire figures of the run so far, or a dash before its first step. */
export function wireFigures(v: RunView) {
  if (v.tokens <= 0) return html`<span data-k="wire">—</span>`;
  const b = wireBytesPerToken(v);
  const r = fp32Ratios(v);
  return html`<span data-k="wire"
    >bytes/token: activations ${bytes(b.activations)} · gradients ${bytes(b.activation_grads)} · sync ${bytes(b.sync)} · state ${bytes(b.state)}
    ·${b.validation > 0 ? html` validation ${bytes(b.validation)} ·` : ''} control
    ${bytes(b.control)}${b.other > 0 ? html` · <b>other ${bytes(b.other)}</b>` : ''} — vs fp32:
    <b data-k="ratio-pipeline">${times(r.pipeline)}</b> fewer on stage boundaries, <b data-k="ratio-sync">${times(r.sync)}</b> on sync,
    <b data-k="ratio-total">${times(r.total)}</b> in all</span
  >`;
}
