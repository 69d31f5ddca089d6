// A live view of a swarm run for the coordinator and demo commands: the step, loss, tokens/s and every peer's stage
// and state. It listens to the coordinator's events and to the control messages the coordinator receives (which
// tell what each peer is doing). On a TTY the table is redrawn in place; otherwise one line per finished step.
import type { Coordinator, StepReport } from '../coordinator/coordinator';
import type { ControlMessage } from '../protocol/messages';
import type { Unsubscribe } from '../net/emitter';

export type PeerState = 'joined' | 'assigned' | 'linking' | 'ready' | 'forward/backward' | 'reducing' | 'applied' | 'error' | 'gone';

export interface PeerRow {
  peerId: string;
  platform: string;
  stage: number | null;
  state: PeerState;
  /** Microbatches this peer reported (first stage: mb-done, last stage: mb-loss). */
  microbatches: number;
  throughput: number;
  detail?: string;
}

export interface ControlSource {
  on(event: 'control', handler: (ev: { from: string; msg: ControlMessage }) => void): Unsubscribe;
}

export interface LiveTableOptions {
  out?: NodeJS.WriteStream;
  /** Redraw in place (default: out.isTTY). */
  tty?: boolean;
  title?: string;
  /** Tokens per step (M*B*T), for tokens/s. */
  tokensPerStep: number;
  steps: number;
}

const pad = (s: string, n: number) => (s.length >= n ? s.slice(0, n) : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

export class LiveTable {
  readonly peers = new Map<string, PeerRow>();
  readonly reports: StepReport[] = [];
  private readonly offs: Unsubscribe[] = [];
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  private drawn = 0;
  private timer: NodeJS.Timeout | null = null;
  private restarts = 0;
  private stopped = false;
  private note = '';

  constructor(coordinator: Coordinator, control: ControlSource, private readonly opts: LiveTableOptions) {
    this.out = opts.out ?? process.stdout;
    this.tty = opts.tty ?? !!this.out.isTTY;
    const row = (id: string): PeerRow => {
      let r = this.peers.get(id);
      if (!r) this.peers.set(id, (r = { peerId: id, platform: '?', stage: null, state: 'joined', microbatches: 0, throughput: 0 }));
      return r;
    };
    this.offs.push(
      control.on('control', ({ from, msg }) => {
        const r = row(from);
        switch (msg.type) {
          case 'peer-info':
            r.platform = msg.platform;
            r.throughput = msg.throughput ?? 0;
            r.state = 'joined';
            break;
          case 'swarm-ready':
            r.state = 'ready';
            break;
          case 'mb-done':
          case 'mb-loss':
            r.microbatches++;
            r.state = 'forward/backward';
            break;
          case 'grad-sumsq':
            r.state = 'reducing';
            break;
          case 'step-done':
            r.state = 'applied';
            break;
          case 'status':
            if (msg.state === 'error') {
              r.state = 'error';
              r.detail = msg.detail?.slice(0, 60);
            }
            break;
          default:
            return;
        }
        this.dirty();
      }),
      coordinator.events.on('assigned', ({ peerId, stage }) => {
        const r = row(peerId);
        r.stage = stage;
        r.state = 'assigned';
        this.dirty();
      }),
      coordinator.events.on('membership', ({ stages }) => {
        for (const m of stages) for (const p of m) if (row(p).state !== 'gone') row(p).state = 'linking';
        this.dirty();
      }),
      coordinator.events.on('vanished', ({ peerId }) => {
        row(peerId).state = 'gone';
        this.dirty();
      }),
      coordinator.events.on('restart', ({ step, attempt, reason }) => {
        this.restarts++;
        this.note = `step ${step} re-run (attempt ${attempt + 1}): ${reason}`;
        if (!this.tty) this.out.write(`  ${this.note}\n`);
        this.dirty();
      }),
      coordinator.events.on('step', (r) => {
        this.reports.push(r);
        // Middle stages send no per-microbatch message: a step's members did their part.
        for (const m of r.members) for (const p of m) if (row(p).state !== 'gone' && row(p).state !== 'error') row(p).state = 'applied';
        if (!this.tty) this.out.write(this.stepLine(r) + '\n');
        this.dirty();
      }),
    );
    if (this.tty) this.timer = setInterval(() => this.draw(), 500);
  }

  /** Tokens/s over the finished steps (every step's M*B*T over the sum of step times). */
  tokensPerSecond(): number {
    const ms = this.reports.reduce((a, r) => a + r.ms, 0);
    return ms > 0 ? (this.reports.length * this.opts.tokensPerStep * 1000) / ms : 0;
  }

  /** Free-form status line under the table (TTY) or a plain line. */
  status(s: string): void {
    this.note = s;
    if (!this.tty) this.out.write(`  ${s}\n`);
    this.dirty();
  }

  private stepLine(r: StepReport): string {
    const peers = [...this.peers.values()]
      .filter((p) => p.stage !== null)
      .map((p) => `${p.peerId}:s${p.stage}${p.state === 'gone' ? '(gone)' : ''}`)
      .join(' ');
    const tps = (this.opts.tokensPerStep * 1000) / Math.max(r.ms, 1e-3);
    return `step ${lpad(String(r.step + 1), String(this.opts.steps).length)}/${this.opts.steps}  loss ${r.loss.toFixed(4)}  ` +
      `${lpad(tps.toFixed(0), 6)} tok/s  ${lpad(r.ms.toFixed(0), 6)} ms${r.attempts > 1 ? ` (${r.attempts} attempts)` : ''}  [${peers}]`;
  }

  private dirty(): void {
    // TTY: the timer redraws; also redraw at once on a finished step so the table never lags much.
  }

  /** The table as lines. */
  render(): string[] {
    const last = this.reports[this.reports.length - 1];
    const first = this.reports[0];
    const lines: string[] = [];
    lines.push(
      `${this.opts.title ?? 'swarm'}  step ${last ? last.step + 1 : 0}/${this.opts.steps}  ` +
        `loss ${last ? last.loss.toFixed(4) : '-'}${first && last !== first ? ` (from ${first.loss.toFixed(4)})` : ''}  ` +
        `${this.tokensPerSecond().toFixed(0)} tok/s${this.restarts ? `  restarts ${this.restarts}` : ''}`,
    );
    lines.push(`  ${pad('peer', 24)} ${pad('platform', 8)} ${pad('stage', 5)} ${pad('state', 16)} ${lpad('mb', 5)} ${lpad('bench tok/s', 11)}`);
    const rows = [...this.peers.values()].sort((a, b) => (a.stage ?? 99) - (b.stage ?? 99) || a.peerId.localeCompare(b.peerId));
    for (const r of rows) {
      lines.push(
        `  ${pad(r.peerId, 24)} ${pad(r.platform, 8)} ${pad(r.stage === null ? '-' : String(r.stage), 5)} ${pad(r.state, 16)} ` +
          `${lpad(String(r.microbatches), 5)} ${lpad(r.throughput ? r.throughput.toFixed(0) : '-', 11)}${r.detail ? `  ${r.detail}` : ''}`,
      );
    }
    if (this.note) lines.push(`  ${this.note}`);
    return lines;
  }

  private draw(): void {
    if (!this.tty || this.stopped) return;
    const lines = this.render();
    let s = '';
    if (this.drawn > 0) s += `\x1b[${this.drawn}A`;
    for (const l of lines) s += `\x1b[2K${l}\n`;
    // Clear lines left over from a taller previous frame.
    for (let i = lines.length; i < this.drawn; i++) s += '\x1b[2K\n';
    if (this.drawn > lines.length) s += `\x1b[${this.drawn - lines.length}A`;
    this.out.write(s);
    this.drawn = lines.length;
  }

  /** Stops listening; draws the final table (TTY) or prints it once (non-TTY). */
  stop(): void {
    if (this.stopped) return;
    if (this.timer) clearInterval(this.timer);
    this.draw();
    this.stopped = true;
    for (const off of this.offs) off();
    if (!this.tty) for (const l of this.render()) this.out.write(l + '\n');
  }
}
