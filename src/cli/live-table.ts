// The CLI's rendering of a run's view-model (src/coordinator/run-view.ts) for the coordinator and demo commands:
// the step, loss, tokens/s and every peer's stage and state. The peer table is drawn by cli-table3; on a TTY it is
// redrawn in place by log-update; otherwise (a log, a test reading the output) one line per finished step (and per
// step re-run, pause, resume, frozen peer or move), and the whole table once at the end.
import Table from 'cli-table3';
import { createLogUpdate } from 'log-update';
import type { StepReport } from '../coordinator/coordinator';
import { fp32Ratios, runTokensPerSecond, stepTokensPerSecond, totalWireBytesPerToken, wireLine, type RunView } from '../coordinator/run-view';
import type { RunViewStore } from '../coordinator/run-view-store';
import type { Unsubscribe } from '../net/emitter';

export interface LiveTableOptions {
  out?: NodeJS.WriteStream;
  /** Redraw in place (default: out.isTTY). */
  tty?: boolean;
  title?: string;
}

/** How much of a peer's error detail fits a table row. */
const ROW_DETAIL = 60;

const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** One line for a finished step: step, loss, tokens/s, time, wire bytes per token (x fewer than fp32) and who holds which stage. */
export function stepLine(v: RunView, r: StepReport): string {
  const peers = v.peers
    .filter((p) => p.stage !== null)
    .map((p) => `${p.id}:s${p.stage}${p.state === 'gone' ? '(gone)' : ''}`)
    .join(' ');
  return (
    `step ${lpad(String(r.step + 1), String(v.steps).length)}/${v.steps}  loss ${r.loss.toFixed(4)}  ` +
    `${lpad(stepTokensPerSecond(v, r).toFixed(0), 6)} tok/s  ${lpad(r.ms.toFixed(0), 6)} ms${r.attempts > 1 ? ` (${r.attempts} attempts)` : ''}  ` +
    `${wireCell(v)}  [${peers}]`
  );
}

/** Wire bytes per trained token so far and how many times fewer than fp32 (all categories). */
function wireCell(v: RunView): string {
  if (v.tokens <= 0) return 'wire -';
  const total = fp32Ratios(v).total;
  return `wire ${totalWireBytesPerToken(v).toFixed(1)} B/tok (${Number.isFinite(total) ? total.toFixed(1) : '-'}x vs fp32)`;
}

/** The table as lines: a header with the run's progress, one row per peer (by stage, then id), the last re-run. */
export function renderTable(v: RunView, title = 'swarm'): string[] {
  const last = v.reports[v.reports.length - 1];
  const first = v.reports[0];
  const lines: string[] = [];
  lines.push(
    `${title}  step ${last ? last.step + 1 : 0}/${v.steps}  ` +
      `loss ${last ? last.loss.toFixed(4) : '-'}${first && last !== first ? ` (from ${first.loss.toFixed(4)})` : ''}  ` +
      `${runTokensPerSecond(v).toFixed(0)} tok/s${v.restarts ? `  restarts ${v.restarts}` : ''}`,
  );
  if (v.tokens > 0) lines.push(`  ${wireLine(v)}`);
  // Plain characters and no colours: the same table reads in a terminal, a log file and a test.
  const table = new Table({
    head: ['peer', 'platform', 'stage', 'state', 'mb', 'bench tok/s', 'detail'],
    colAligns: ['left', 'left', 'left', 'left', 'right', 'right', 'left'],
    style: { head: [], border: [], compact: true, 'padding-left': 1, 'padding-right': 1 },
  });
  const rows = [...v.peers].sort((a, b) => (a.stage ?? 99) - (b.stage ?? 99) || a.id.localeCompare(b.id));
  for (const r of rows) {
    table.push([
      r.id,
      r.platform,
      r.stage === null ? '-' : String(r.stage),
      r.state,
      String(r.microbatches),
      r.throughput ? r.throughput.toFixed(0) : '-',
      r.detail ? r.detail.slice(0, ROW_DETAIL) : '',
    ]);
  }
  for (const l of table.toString().split('\n')) lines.push(`  ${l}`);
  if (v.paused) lines.push(`  PAUSED at step ${v.paused.step}: ${v.paused.reason}`);
  if (v.note) lines.push(`  ${v.note}`);
  return lines;
}

export class LiveTable {
  private readonly off: Unsubscribe;
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly redraw: ReturnType<typeof createLogUpdate> | null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly store: RunViewStore,
    private readonly opts: LiveTableOptions = {},
  ) {
    this.out = opts.out ?? process.stdout;
    this.tty = opts.tty ?? !!this.out.isTTY;
    this.off = store.onChange(({ view, input }) => {
      if (this.tty || this.stopped) return; // TTY: the timer redraws
      if (input.kind === 'step') this.out.write(stepLine(view, input.report) + '\n');
      else if (input.kind === 'restart') this.out.write(`  ${view.note}\n`);
      // Stage loss, frozen peers and moves are news in a log too (docs/resilience.md): the view's event line.
      else if (input.kind === 'paused' || input.kind === 'resumed' || input.kind === 'frozen' || input.kind === 'moved') {
        const e = view.events[view.events.length - 1];
        if (e) this.out.write(`  ${e.text}\n`);
      }
    });
    // The cursor stays visible: a killed process must not leave the terminal without one.
    this.redraw = this.tty ? createLogUpdate(this.out, { showCursor: true }) : null;
    if (this.tty) this.timer = setInterval(() => this.draw(), 500);
  }

  /** Tokens/s over the finished steps. */
  tokensPerSecond(): number {
    return runTokensPerSecond(this.store.view);
  }

  render(): string[] {
    return renderTable(this.store.view, this.opts.title);
  }

  private draw(): void {
    if (!this.redraw || this.stopped) return;
    this.redraw(this.render().join('\n'));
  }

  /** Stops listening; draws the final table (TTY) or prints it once (non-TTY). */
  stop(): void {
    if (this.stopped) return;
    if (this.timer) clearInterval(this.timer);
    this.draw();
    this.redraw?.done(); // the last frame stays on screen; later output goes below it
    this.stopped = true;
    this.off();
    if (!this.tty) for (const l of this.render()) this.out.write(l + '\n');
  }
}
