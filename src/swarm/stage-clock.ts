// Where one step attempt's time goes on this peer (src/protocol/stage-time.ts): StageRuntime adds each part as it
// runs, and takes the attempt's StageTime when it reports step-done.
import { emptyStageTime, type StageTime } from '../protocol/stage-time';

type Measured = 'compute' | 'send' | 'sync';

export class StageClock {
  private t0 = performance.now();
  private parts = { compute: 0, send: 0, sync: 0 };
  /** The compute's codec counter (StageCompute.codecMs) at the attempt's start. */
  private codec0 = 0;
  private syncFrom: { t: number; compute: number; send: number } | null = null;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A new attempt: everything measured before is dropped. */
  begin(codecMs = 0): void {
    this.t0 = this.now();
    this.parts = { compute: 0, send: 0, sync: 0 };
    this.codec0 = codecMs;
    this.syncFrom = null;
  }

  add(part: Measured, ms: number): void {
    if (Number.isFinite(ms) && ms > 0) this.parts[part] += ms;
  }

  /** Runs `fn`, adding its wall time to `part` (its synchronous part only, when it returns no promise). */
  time<T>(part: Measured, fn: () => T): T {
    const t0 = this.now();
    let out: T;
    try {
      out = fn();
    } catch (err) {
      this.add(part, this.now() - t0);
      throw err;
    }
    if (out instanceof Promise) return out.finally(() => this.add(part, this.now() - t0)) as T;
    this.add(part, this.now() - t0);
    return out;
  }

  /** The reduce began: from here to the report, what is not compute or send is sync (waiting on others). */
  syncBegins(): void {
    this.syncFrom ??= { t: this.now(), compute: this.parts.compute, send: this.parts.send };
  }

  /** The attempt's time so far; `codecMs`: the compute's codec counter now (its host codec time is not compute). */
  take(codecMs = this.codec0): StageTime {
    const t = this.now();
    const out = emptyStageTime();
    out.wall = t - this.t0;
    out.codec = Math.max(0, codecMs - this.codec0);
    // The codecs run inside compute calls: their host time is taken out of compute.
    out.compute = Math.max(0, this.parts.compute - out.codec);
    out.send = this.parts.send;
    const f = this.syncFrom;
    out.sync = f ? Math.max(0, t - f.t - (this.parts.compute - f.compute) - (this.parts.send - f.send)) : 0;
    out.wait = Math.max(0, out.wall - out.compute - out.codec - out.send - out.sync);
    return out;
  }
}
