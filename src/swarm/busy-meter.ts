// This peer's compute time per step attempt, for the coordinator's live rebalancing (`step-done.timing`,
// docs/resilience.md). StageRuntime runs its GPU calls one at a time on a promise chain, so the time from a call's
// start to its end is the compute it took, with no queueing in it (a task waits on the chain before it calls).
// Measured: forward, forwardBackward (the loss) and backward. A first stage's backward returns before the GPU ran
// it (StageCompute's contract); its work is waited for by the next call that reads the GPU, so that next call
// (whatever it is: the next forward, the reduce's gradient read) is counted too.
import { DelegatingCompute, type MicrobatchKey, type StageInput } from '../model/stage-compute';

export interface BusyTiming {
  busyMs: number;
  /** Microbatches run (a forward and its backward each; the last stage's forwardBackward is one). */
  passes: number;
}

export class BusyMeter extends DelegatingCompute {
  private busyMs = 0;
  private passes = 0;
  /** A backward was launched without waiting for the GPU: the next call's time is its time. */
  private deferred = false;

  /** The attempt's timing so far, and a fresh start. */
  take(): BusyTiming {
    const t = { busyMs: Math.round(this.busyMs * 1000) / 1000, passes: this.passes };
    this.reset();
    return t;
  }

  /** A new attempt: what the old one measured is dropped. */
  reset(): void {
    this.busyMs = 0;
    this.passes = 0;
    this.deferred = false;
  }

  private async timed<T>(call: () => Promise<T>, counts: boolean, pass: boolean): Promise<T> {
    const owed = this.deferred;
    this.deferred = false;
    const t0 = performance.now();
    try {
      return await call();
    } finally {
      if (counts || owed) this.busyMs += performance.now() - t0;
      if (pass) this.passes++;
    }
  }

  override forward(slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array> {
    return this.timed(() => this.inner.forward(slot, input, key), true, true);
  }

  override forwardBackward(
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }> {
    return this.timed(() => this.inner.forwardBackward(slot, input, targets, lossScale, key), true, true);
  }

  override async backward(slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null> {
    const g = await this.timed(() => this.inner.backward(slot, gradOut, key), true, false);
    if (g === null) this.deferred = true;
    return g;
  }

  // Calls that may wait for a deferred backward's GPU work.
  override zeroGrads(): Promise<void> {
    return this.timed(() => this.inner.zeroGrads(), false, false);
  }
  override readFlat(
    which: Parameters<DelegatingCompute['readFlat']>[0],
    range?: Parameters<DelegatingCompute['readFlat']>[1],
  ): Promise<Float32Array> {
    return this.timed(() => this.inner.readFlat(which, range), false, false);
  }
  override gradSumSquares(opts?: { excludeTiedWte?: boolean }): Promise<number> {
    return this.timed(() => this.inner.gradSumSquares(opts), false, false);
  }
}
