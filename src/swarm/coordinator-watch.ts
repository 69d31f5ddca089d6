// A peer whose coordinator left (docs/resilience.md "Coordinator restart"): when the signaling server says the room's
// coordinator left, the peer waits — keeping its stage, weights and links — for at most `waitMs`, showing the time
// left. When the run's coordinator key comes back (signaling `peer-joined` of the coordinator: the server admits only
// the room's key as coordinator) or the coordinator asks (`reannounce`: a resumed coordinator, or one whose signaling
// connection came back), the peer re-announces itself with its member claim, so the coordinator re-adopts it. After
// the bound it gives up, saying which run's coordinator left at which step and for how long it waited.
import type { Unsubscribe } from '../net/emitter';
import type { ControlMessage } from '../protocol/messages';

/** What the watch needs of the signaling connection (SwarmSignaling). */
export interface WatchSignaling {
  on(event: 'peer-left', handler: (ev: { peerId: string; role: string }) => void): Unsubscribe;
  on(event: 'peer-joined', handler: (ev: { peerId: string; role: string }) => void): Unsubscribe;
  on(event: 'control', handler: (ev: { from: string; msg: ControlMessage }) => void): Unsubscribe;
}

export interface CoordinatorWatchOptions {
  signaling: WatchSignaling;
  /** How long to wait for the coordinator (default 600 s). */
  waitMs?: number;
  /** The run this peer is in and the steps it applied (null: not in a run yet: nothing to wait for). */
  position: () => { runId: string; step: number } | null;
  /** Say hello + peer-info again, with the member claim. */
  reannounce: () => void;
  /** The wait began (`leftMs`: ms left), ticks every second, and ended (null: the coordinator is back). */
  waiting: (leftMs: number | null) => void;
  /** The bound passed: the peer ends with this error. */
  giveUp: (err: Error) => void;
  log?: (s: string) => void;
}

export const DEFAULT_COORDINATOR_WAIT_MS = 600_000;

export class CoordinatorWatch {
  private readonly offs: Unsubscribe[];
  private deadline: ReturnType<typeof setTimeout> | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private readonly waitMs: number;

  constructor(private readonly o: CoordinatorWatchOptions) {
    this.waitMs = o.waitMs ?? DEFAULT_COORDINATOR_WAIT_MS;
    this.offs = [
      o.signaling.on('peer-left', ({ role }) => {
        if (role === 'coordinator') this.left();
      }),
      o.signaling.on('peer-joined', ({ role }) => {
        if (role === 'coordinator' && this.isWaiting) this.back('the coordinator rejoined the room');
      }),
      o.signaling.on('control', ({ msg }) => {
        // Control messages reach the peer only from the room's coordinator key (SignedControl).
        if (msg.type !== 'reannounce') return;
        const pos = this.o.position();
        if (pos && pos.runId !== msg.runId) return this.o.log?.(`reannounce of run ${msg.runId} ignored: this peer is in run ${pos.runId}`);
        this.back(`the coordinator asks to re-announce (run ${msg.runId}, step ${msg.step})`);
      }),
    ];
  }

  get isWaiting(): boolean {
    return this.deadline !== null;
  }

  private left(): void {
    const pos = this.o.position();
    if (!pos || this.isWaiting) return;
    const t0 = performance.now();
    this.o.log?.(`the coordinator of run ${pos.runId} left at step ${pos.step}: waiting up to ${seconds(this.waitMs)} s for it`);
    this.o.waiting(this.waitMs);
    this.ticker = setInterval(() => this.o.waiting(Math.max(0, this.waitMs - (performance.now() - t0))), 1000);
    this.deadline = setTimeout(() => {
      this.stop();
      const now = this.o.position() ?? pos;
      this.o.giveUp(new Error(`the coordinator of run ${now.runId} left at step ${now.step} and did not return within ${seconds(this.waitMs)} s`));
    }, this.waitMs);
  }

  private back(why: string): void {
    const was = this.isWaiting;
    this.stop();
    this.o.log?.(`${why}: re-announcing`);
    this.o.reannounce();
    if (was) this.o.waiting(null);
  }

  private stop(): void {
    if (this.deadline) clearTimeout(this.deadline);
    if (this.ticker) clearInterval(this.ticker);
    this.deadline = this.ticker = null;
  }

  close(): void {
    this.stop();
    for (const off of this.offs.splice(0)) off();
  }
}

/** ms as seconds for a person: 600 s, 3 s, 0.25 s. */
const seconds = (ms: number): number => Number((ms / 1000).toFixed(3));
