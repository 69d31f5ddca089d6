// A stage replica's local-steps outer state as asynchronous host-array operations (like StageCompute, so it can sit
// behind a worker boundary): the swarm's runtime drives it, OuterState does the GPU work (src/model/outer-optimizer.ts).
import type { Runtime } from '../gpu/runtime';
import { OuterState, type OuterHyper, type OuterPart, type SyncCodec } from './outer-optimizer';
import type { ParamStore } from './params';

export interface OuterCompute {
  /** θ_sync = the current weights, momentum and error feedback zero (start of the run, after the weights load). */
  reset(): Promise<void>;
  /** This replica's compressed pseudo-gradient (error feedback kept), keyed by the sync's step and the lane. */
  encode(step: number, lane: number): Promise<Uint8Array>;
  /** The outer step from every replica's payload in rank order; returns the new parameters (for a digest). */
  apply(payloads: Uint8Array[], hyper: OuterHyper): Promise<Float32Array>;
  readFlat(which: OuterPart): Promise<Float32Array>;
  writeFlat(which: OuterPart, data: Float32Array): Promise<void>;
}

/** The outer state on a Runtime in this process, over a stage's ParamStore. */
export class LocalOuterCompute implements OuterCompute {
  private readonly state: OuterState;

  constructor(
    private readonly rt: Runtime,
    store: ParamStore,
    private readonly codec: SyncCodec,
    private readonly seed: number,
  ) {
    this.state = new OuterState(rt, store);
  }

  async reset(): Promise<void> {
    this.state.reset();
    await this.rt.flush();
  }

  encode(step: number, lane: number): Promise<Uint8Array> {
    return this.state.encode(this.codec, { seed: this.seed, step, lane });
  }

  apply(payloads: Uint8Array[], hyper: OuterHyper): Promise<Float32Array> {
    this.state.apply(this.codec, payloads, hyper);
    return this.state.store.readFlat('params');
  }

  readFlat(which: OuterPart): Promise<Float32Array> {
    return this.state.readFlat(which);
  }

  async writeFlat(which: OuterPart, data: Float32Array): Promise<void> {
    this.state.writeFlat(which, data);
  }

  dispose(): void {
    this.state.dispose();
  }
}
