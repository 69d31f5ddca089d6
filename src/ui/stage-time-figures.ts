// Time accounting on the coordinator page: per stage, the share of its step time that went to compute, the codecs,
// sending, the reduce's sync and waiting (the pipeline's bubble), over the latest steps (run-view.ts stageTimes).
import { html } from 'lit';
import { stageTimes, type RunView } from '../coordinator/run-view';
import { shareOf, STAGE_TIME_PARTS } from '../protocol/stage-time';

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

/** One line per stage, or a dash before any step reported its times. */
export function stageTimeFigures(v: RunView) {
  const times = stageTimes(v);
  if (!times.some((t) => t)) return html`<span data-k="stage-time">—</span>`;
  return html`<span data-k="stage-time"
    >${times.map(
      (t, s) =>
        html`<span data-k="stage-time-${s}"
            >stage ${s}:
            ${t ? html`${t.wall.toFixed(0)} ms/step — ${STAGE_TIME_PARTS.map((k) => `${k} ${pct(shareOf(t, k))}`).join(' · ')}` : '—'}</span
          ><br />`,
    )}</span
  >`;
}
