// The simulator's report over swarm sizes (`tabswarm simulate --report DIR`: 10, 100, 1,000 and 10,000 peers): a
// table (cli-table3 for a terminal, markdown for report.md), an SVG plot of efficiency and tokens/s against peers
// on a log x axis (hand-written: no plotting dependency for two lines), and a sentence per size where a figure says
// the swarm breaks: efficiency under the issue's goal, the coordinator's CPU taking a large share of each step, no
// step completed, or a limit the simulator itself names.
import Table from 'cli-table3';
import type { Scenario, SimSummary } from './types';

/** An efficiency with three decimals, or two significant digits when it is under 0.01 (0.000 says nothing). */
export function fmtEfficiency(e: number): string {
  return e >= 0.01 || e === 0 ? e.toFixed(3) : e.toExponential(1);
}

/** The issue's goal: at 1,000 peers with 10% churn per hour, efficiency >= 0.8. */
export const EFFICIENCY_GOAL = 0.8;
/** The coordinator is the limit when its CPU per step is at least this share of the step's wall time (one thread). */
export const COORDINATOR_CPU_SHARE = 0.5;

export interface ReportRow {
  scenario: Scenario;
  summary: SimSummary;
  /** Wall-clock seconds the simulation took (not part of the deterministic summary). */
  wallS?: number;
  /** Limits the run hit that the summary has no field for (e.g. messages the protocol's schema refused), in words. */
  limits?: readonly string[];
}

/** A limit the simulator names in its summary, if its summary carries one (`limit` or `breaks`, a string). */
function namedLimit(s: SimSummary): string | null {
  for (const key of ['limit', 'breaks'] as const) {
    const v: unknown = (s as unknown as Record<string, unknown>)[key];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return null;
}

/** Seconds per step at the summary's throughput (M microbatches of B sequences of T tokens). */
export function stepSeconds(r: ReportRow): number | null {
  const tokens = r.scenario.M * r.scenario.B * r.scenario.model.block_size;
  return r.summary.tokens_per_s > 0 ? tokens / r.summary.tokens_per_s : null;
}

/** Where this size breaks, as sentences (empty when nothing does). */
export function breakpoints(r: ReportRow): string[] {
  const s = r.summary;
  const out: string[] = [];
  const named = namedLimit(s);
  if (named) out.push(named);
  out.push(...(r.limits ?? []));
  if (s.steps === 0) out.push('no step completed in the simulated time');
  else if (s.efficiency < EFFICIENCY_GOAL) out.push(`efficiency ${fmtEfficiency(s.efficiency)} is under the goal of ${EFFICIENCY_GOAL}`);
  const step = stepSeconds(r);
  if (step !== null && s.coordinator_cpu_ms_per_step >= COORDINATOR_CPU_SHARE * step * 1000)
    out.push(
      `the coordinator's CPU is the limit: ${fmt(s.coordinator_cpu_ms_per_step)} ms per step of a ${fmt(step * 1000)} ms step ` +
        `(${fmt(s.control_msgs_per_s)} control messages/s)`,
    );
  if (s.evicted_honest > 0) out.push(`${s.evicted_honest} honest peer(s) evicted`);
  return out;
}

/** A number for a table: integers grouped, small values with 2-3 significant digits. */
export function fmt(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '-';
  if (Number.isInteger(x) || Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 1) return x.toFixed(1);
  if (x === 0) return '0';
  return x.toPrecision(2);
}

const COLUMNS: readonly { head: string; cell: (r: ReportRow) => string }[] = [
  { head: 'peers', cell: (r) => fmt(r.summary.peers) },
  { head: 'tokens/s', cell: (r) => fmt(r.summary.tokens_per_s) },
  { head: 'ideal tokens/s', cell: (r) => fmt(r.summary.ideal_tokens_per_s) },
  { head: 'efficiency', cell: (r) => fmtEfficiency(r.summary.efficiency) },
  { head: 'steps', cell: (r) => fmt(r.summary.steps) },
  { head: 'steps lost', cell: (r) => fmt(r.summary.steps_lost) },
  { head: 'mb recomputed', cell: (r) => fmt(r.summary.microbatches_recomputed) },
  { head: 'coord CPU ms/step', cell: (r) => fmt(r.summary.coordinator_cpu_ms_per_step) },
  { head: 'control msgs/s', cell: (r) => fmt(r.summary.control_msgs_per_s) },
  { head: 'bytes/peer/step', cell: (r) => fmt(r.summary.bytes_per_peer_per_step) },
  { head: 'evicted honest', cell: (r) => fmt(r.summary.evicted_honest) },
  { head: 'evicted adversaries', cell: (r) => fmt(r.summary.evicted_adversaries) },
  { head: 's to evict', cell: (r) => fmt(r.summary.seconds_to_evict) },
  { head: 'wall s', cell: (r) => fmt(r.wallS ?? null) },
];

/** The table for a terminal (cli-table3, no colours: it may go to a log). */
export function terminalTable(rows: readonly ReportRow[]): string {
  const t = new Table({ head: COLUMNS.map((c) => c.head), style: { head: [], border: [] } });
  for (const r of rows) t.push(COLUMNS.map((c) => c.cell(r)));
  return t.toString();
}

export function markdownTable(rows: readonly ReportRow[]): string {
  return [
    `| ${COLUMNS.map((c) => c.head).join(' | ')} |`,
    `| ${COLUMNS.map(() => '---:').join(' | ')} |`,
    ...rows.map((r) => `| ${COLUMNS.map((c) => c.cell(r)).join(' | ')} |`),
  ].join('\n');
}

/** One sentence over all sizes: where the swarm breaks first, or that it held up. */
export function breakSentence(rows: readonly ReportRow[]): string {
  const broken = rows.map((r) => ({ r, why: breakpoints(r) })).filter((x) => x.why.length > 0);
  if (broken.length === 0)
    return `Nothing breaks up to ${fmt(Math.max(0, ...rows.map((r) => r.summary.peers)))} peers: every size reaches efficiency >= ${EFFICIENCY_GOAL}.`;
  return broken.map(({ r, why }) => `At ${fmt(r.summary.peers)} peers it breaks: ${why.join('; ')}.`).join(' ');
}

/** The scenario all rows share, in words (peers and M vary per size). */
function scenarioLine(s: Scenario, perSize: string): string {
  const m = s.model;
  return (
    `${s.stages} stages, churn ${s.churnPerHour} of the swarm per hour, adversaries ${s.adversaries}, ` +
    `--compress ${s.compress}, ${s.hours} h simulated, seed ${s.seed}; model n_layer ${m.n_layer}, n_head ${m.n_head}, ` +
    `n_embd ${m.n_embd}, block ${m.block_size}, vocab ${m.vocab_size}; B ${s.B}; microbatches per step M: ${perSize}.`
  );
}

export function markdownReport(rows: readonly ReportRow[], svgFile: string): string {
  const first = rows[0];
  const scenario = first ? scenarioLine(first.scenario, rows.map((r) => `${fmt(r.summary.peers)} peers: ${r.scenario.M}`).join(', ')) : '';
  return [
    '# tabswarm simulate: report',
    '',
    scenario,
    '',
    markdownTable(rows),
    '',
    breakSentence(rows),
    '',
    `![efficiency and tokens/s vs peers](${svgFile})`,
    '',
  ].join('\n');
}

// ---- SVG ----------------------------------------------------------------------------------------------------------

const W = 720;
const H = 420;
const PAD = { left: 70, right: 90, top: 40, bottom: 60 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Decades [10^a, 10^b] that cover the values (at least one decade). */
function decades(values: readonly number[]): [number, number] {
  const pos = values.filter((v) => v > 0);
  if (pos.length === 0) return [0, 1];
  const lo = Math.floor(Math.log10(Math.min(...pos)));
  const hi = Math.ceil(Math.log10(Math.max(...pos)));
  return [lo, hi > lo ? hi : lo + 1];
}

/**
 * Efficiency (left axis, 0-1, with the goal as a dotted line) and tokens/s measured and ideal (right axis, log)
 * against peers (log x axis).
 */
export function svgPlot(rows: readonly ReportRow[]): string {
  const pw = W - PAD.left - PAD.right;
  const ph = H - PAD.top - PAD.bottom;
  const [x0, x1] = decades(rows.map((r) => r.summary.peers));
  const [t0, t1] = decades(rows.flatMap((r) => [r.summary.tokens_per_s, r.summary.ideal_tokens_per_s]));
  const X = (p: number) => PAD.left + ((Math.log10(p) - x0) / (x1 - x0)) * pw;
  const Ye = (e: number) => PAD.top + (1 - Math.min(1, Math.max(0, e))) * ph;
  const Yt = (t: number) => PAD.top + (1 - (Math.log10(Math.max(t, 10 ** t0)) - t0) / (t1 - t0)) * ph;
  const n = (v: number) => v.toFixed(1);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">tabswarm simulate: efficiency and tokens/s vs peers</text>`,
  );
  // grid + x ticks (decades)
  for (let d = x0; d <= x1; d++) {
    const x = X(10 ** d);
    parts.push(`<line x1="${n(x)}" y1="${PAD.top}" x2="${n(x)}" y2="${PAD.top + ph}" stroke="#ddd"/>`);
    parts.push(`<text x="${n(x)}" y="${PAD.top + ph + 18}" text-anchor="middle">${fmt(10 ** d)}</text>`);
  }
  // left axis: efficiency 0..1
  for (let i = 0; i <= 5; i++) {
    const e = i / 5;
    parts.push(`<line x1="${PAD.left - 5}" y1="${n(Ye(e))}" x2="${PAD.left}" y2="${n(Ye(e))}" stroke="black"/>`);
    parts.push(`<text x="${PAD.left - 8}" y="${n(Ye(e) + 4)}" text-anchor="end">${e.toFixed(1)}</text>`);
  }
  // right axis: tokens/s decades
  for (let d = t0; d <= t1; d++) {
    const y = Yt(10 ** d);
    parts.push(`<line x1="${PAD.left + pw}" y1="${n(y)}" x2="${PAD.left + pw + 5}" y2="${n(y)}" stroke="black"/>`);
    parts.push(`<text x="${PAD.left + pw + 8}" y="${n(y + 4)}">${fmt(10 ** d)}</text>`);
  }
  parts.push(
    `<rect x="${PAD.left}" y="${PAD.top}" width="${pw}" height="${ph}" fill="none" stroke="black"/>`,
    `<line x1="${PAD.left}" y1="${n(Ye(EFFICIENCY_GOAL))}" x2="${PAD.left + pw}" y2="${n(Ye(EFFICIENCY_GOAL))}" stroke="#2a7" stroke-dasharray="2 4"/>`,
    `<text x="${W / 2}" y="${H - 18}" text-anchor="middle">peers (log scale)</text>`,
    `<text transform="translate(18 ${PAD.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#2a7">efficiency (tokens/s / ideal)</text>`,
    `<text transform="translate(${W - 14} ${PAD.top + ph / 2}) rotate(90)" text-anchor="middle" fill="#36c">tokens/s (log scale)</text>`,
  );
  const line = (pts: [number, number][], colour: string, dash = '') =>
    pts.length
      ? `<polyline fill="none" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${pts.map(([x, y]) => `${n(x)},${n(y)}`).join(' ')}"/>` +
        pts.map(([x, y]) => `<circle cx="${n(x)}" cy="${n(y)}" r="3.5" fill="${colour}"/>`).join('')
      : '';
  const sorted = [...rows].filter((r) => r.summary.peers > 0).sort((a, b) => a.summary.peers - b.summary.peers);
  parts.push(
    line(
      sorted.map((r) => [X(r.summary.peers), Ye(r.summary.efficiency)]),
      '#2a7',
    ),
  );
  parts.push(
    line(
      sorted.map((r) => [X(r.summary.peers), Yt(r.summary.tokens_per_s)]),
      '#36c',
    ),
  );
  parts.push(
    line(
      sorted.map((r) => [X(r.summary.peers), Yt(r.summary.ideal_tokens_per_s)]),
      '#9ab',
      '6 4',
    ),
  );
  // marks where it breaks
  for (const r of sorted)
    if (breakpoints(r).length) parts.push(`<text x="${n(X(r.summary.peers))}" y="${PAD.top - 6}" text-anchor="middle" fill="#c33">&#x2716;</text>`);
  // legend
  const lx = PAD.left + 10;
  const legend: [string, string, string][] = [
    ['efficiency', '#2a7', ''],
    ['tokens/s', '#36c', ''],
    ['ideal tokens/s', '#9ab', '6 4'],
    [`goal ${EFFICIENCY_GOAL}`, '#2a7', '2 4'],
  ];
  legend.forEach(([label, colour, dash], i) => {
    const y = PAD.top + 16 + i * 16;
    parts.push(
      `<line x1="${lx}" y1="${y - 4}" x2="${lx + 24}" y2="${y - 4}" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
    );
    parts.push(`<text x="${lx + 30}" y="${y}">${esc(label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
