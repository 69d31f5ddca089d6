// Dead-peer detection. A data channel to a killed process can stay "open" for tens of seconds (SCTP and ICE
// consent timeouts), far too long for a pipeline waiting on activations. Each side pings every `intervalMs`;
// any frame from the peer counts as a sign of life; silence for `deadAfterMs` declares the peer dead.
// Detection time is therefore at most deadAfterMs + one check period (intervalMs / 2). If this side's own event
// loop was blocked, the verdict waits one more check period so queued frames are seen first.

import { TimeoutError, unrefTimer } from './timers';

export interface HeartbeatOptions {
  intervalMs: number;
  deadAfterMs: number;
}

/** Defaults: a vanished peer is noticed within 5.5 s, while a busy event loop of up to ~4 s is tolerated. */
export const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalMs: 1000, deadAfterMs: 5000 };

export class Heartbeat {
  private lastHeard = performance.now();
  private lastPing = 0;
  private lastTick = 0;
  private checkMs = 0;
  private seq = 0;
  private rtt: number | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly waiters = new Map<number, { resolve: (rttMs: number) => void; reject: (err: Error) => void }>();

  constructor(
    private readonly opts: HeartbeatOptions,
    private readonly sendPing: (seq: number, time: number) => void,
    private readonly onDead: (silentMs: number) => void,
  ) {}

  start(): void {
    if (this.timer) return;
    this.lastHeard = performance.now();
    this.lastTick = this.lastHeard;
    this.checkMs = Math.max(5, Math.floor(this.opts.intervalMs / 2));
    this.timer = setInterval(() => this.tick(), this.checkMs);
    unrefTimer(this.timer);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // Explicit pings in flight can never be answered now: fail them at once instead of at their timeout.
    const waiters = [...this.waiters.values()];
    this.waiters.clear();
    for (const w of waiters) w.reject(new Error('link closed while waiting for a pong'));
  }

  heard(): void {
    this.lastHeard = performance.now();
  }

  silentForMs(): number {
    return performance.now() - this.lastHeard;
  }

  get rttMs(): number | null {
    return this.rtt;
  }

  /** Called for every pong; `time` is the sender's own timestamp echoed back. */
  pong(seq: number, time: number): void {
    const sample = performance.now() - time;
    if (sample >= 0 && sample < 60_000) this.rtt = this.rtt === null ? sample : this.rtt * 0.8 + sample * 0.2;
    const w = this.waiters.get(seq);
    if (w) {
      this.waiters.delete(seq);
      w.resolve(sample);
    }
  }

  /** Sends a ping now and resolves with its round trip; rejects after `timeoutMs` without a pong. */
  ping(timeoutMs: number): Promise<number> {
    const seq = this.nextSeq();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(seq);
        reject(new TimeoutError(`no pong within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(seq, {
        resolve: (rtt) => {
          clearTimeout(timer);
          resolve(rtt);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      try {
        this.sendPing(seq, performance.now());
      } catch (err) {
        clearTimeout(timer);
        this.waiters.delete(seq);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private tick(): void {
    const now = performance.now();
    const late = now - this.lastTick > 2 * this.checkMs + 100;
    this.lastTick = now;
    const silent = now - this.lastHeard;
    // A late tick means our own event loop was blocked (long compute, GC): the peer's frames may be sitting
    // unprocessed in the queue right behind this timer, so judge silence on the next tick, not this one.
    if (silent > this.opts.deadAfterMs && !late) {
      this.stop();
      this.onDead(silent);
      return;
    }
    if (now - this.lastPing >= this.opts.intervalMs) {
      this.lastPing = now;
      try {
        this.sendPing(this.nextSeq(), now);
      } catch {
        // The channel closed under us; its close event ends this heartbeat.
      }
    }
  }
}
