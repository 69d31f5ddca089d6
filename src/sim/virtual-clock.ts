// Virtual time for the simulator: the real coordinator's setTimeout / setInterval / performance.now / Date run on a
// fake clock (@sinonjs/fake-timers) that jumps from one timer to the next, so an hour of swarm time costs only the
// CPU its events take. WebCrypto (the peers' payload signatures, the coordinator's checks of them) resolves on
// libuv's thread pool, outside the fake clock: every call is counted while it is in flight, and virtual time moves
// on only once none is and the microtasks they woke have run, so the same seed gives the same run.
//
// The simulator's own events (thousands of peers' messages, passes and transfers) do not go into fake-timers: it
// finds its next timer by scanning all of them, which made every event cost O(timers) and a 1,000-peer hour
// quadratic. They wait in a binary heap here; fake-timers holds only the coordinator's few timers, and each turn
// runs whichever of the two comes first (the coordinator's timer on a tie).
import FakeTimers from '@sinonjs/fake-timers';

/** Who an event's CPU time is charged to. */
export type EventOwner = 'coordinator' | 'peers';

const SUBTLE_METHODS = ['sign', 'verify', 'digest', 'importKey', 'exportKey', 'generateKey'] as const;

interface SimEvent {
  atMs: number;
  /** Scheduling order: equal times run in the order they were scheduled. */
  seq: number;
  owner: EventOwner;
  fn: () => void;
}

/** Min-heap of events by (atMs, seq). */
class EventHeap {
  private readonly items: SimEvent[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): SimEvent | undefined {
    return this.items[0];
  }

  push(e: SimEvent): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): SimEvent | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && before(a[l], a[m])) m = l;
      if (r < a.length && before(a[r], a[m])) m = r;
      if (m === i) break;
      [a[i], a[m]] = [a[m], a[i]];
      i = m;
    }
    return top;
  }
}

function before(x: SimEvent, y: SimEvent): boolean {
  return x.atMs < y.atMs || (x.atMs === y.atMs && x.seq < y.seq);
}

/** The part of fake-timers' clock this reads: its pending timers (an object keyed by id; absent when none). */
interface TimerTable {
  timers?: Record<string, { callAt: number } | undefined>;
}

export class VirtualClock {
  private readonly clock: FakeTimers.InstalledClock;
  private readonly heap = new EventHeap();
  private seq = 0;
  private inflight = 0;
  private readonly realImmediate = globalThis.setImmediate;
  /** Process CPU microseconds spent in the coordinator's events (its own timers, the messages it is handed). */
  readonly cpuUs: Record<'coordinator', number> = { coordinator: 0 };
  events = 0;

  constructor() {
    this.clock = FakeTimers.withGlobal(globalThis).install({
      now: 0,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
      loopLimit: Number.MAX_SAFE_INTEGER,
    });
    const subtle = globalThis.crypto.subtle as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const name of SUBTLE_METHODS) {
      const orig = subtle[name];
      subtle[name] = (...args: unknown[]) => {
        this.inflight++;
        return orig.apply(globalThis.crypto.subtle, args).finally(() => this.inflight--);
      };
    }
  }

  /** Virtual milliseconds since the start. */
  now(): number {
    return this.clock.now;
  }

  /** Runs `fn` `delayMs` virtual milliseconds from now, its CPU charged to `owner`. Equal times run in call order. */
  at(delayMs: number, owner: EventOwner, fn: () => void): void {
    this.heap.push({ atMs: this.clock.now + Math.max(0, delayMs), seq: this.seq++, owner, fn });
  }

  /** Lets every microtask and in-flight WebCrypto call finish (real event-loop turns, no virtual time). */
  async settle(): Promise<void> {
    do await new Promise<void>((r) => this.realImmediate(r));
    while (this.inflight > 0);
  }

  /** When the coordinator's next timer is due (Infinity when it has none): a scan of its few timers. */
  private nextTimerAt(): number {
    const timers = (this.clock as unknown as TimerTable).timers;
    let t = Number.POSITIVE_INFINITY;
    if (timers) for (const id in timers) t = Math.min(t, timers[id]?.callAt ?? t);
    return t;
  }

  /** Runs events in virtual-time order until `endMs` (or nothing is left to run). */
  async runUntil(endMs: number, onEach?: (nowMs: number) => void): Promise<void> {
    await this.settle();
    for (;;) {
      const timerAt = this.nextTimerAt();
      const ev = this.heap.peek();
      const next = Math.min(timerAt, ev?.atMs ?? Number.POSITIVE_INFINITY);
      if (!Number.isFinite(next) || next > endMs) break;
      if (timerAt <= next) {
        // A coordinator timer (setTimeout / setInterval in its own code): measured.
        const c0 = process.cpuUsage();
        this.clock.next();
        await this.settle();
        const d = process.cpuUsage(c0);
        this.cpuUs.coordinator += d.user + d.system;
      } else if (ev) {
        this.heap.pop();
        if (ev.atMs > this.clock.now) this.clock.tick(ev.atMs - this.clock.now); // no timer is due before it
        if (ev.owner === 'coordinator') {
          const c0 = process.cpuUsage();
          ev.fn();
          await this.settle();
          const d = process.cpuUsage(c0);
          this.cpuUs.coordinator += d.user + d.system;
        } else {
          ev.fn();
          await this.settle();
        }
      }
      this.events++;
      onEach?.(this.clock.now);
    }
    if (this.clock.now < endMs) this.clock.tick(endMs - this.clock.now);
  }

  /** Real timers and WebCrypto back; pending virtual timers are dropped. */
  uninstall(): void {
    const subtle = globalThis.crypto.subtle as unknown as Record<string, unknown>;
    for (const name of SUBTLE_METHODS) delete subtle[name];
    this.clock.uninstall();
  }
}
