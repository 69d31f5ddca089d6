// A swarm peer's compute that corrupts what it sends, once: the real LocalStageCompute does every computation, and
// the first payload of the chosen direction it returns is replaced by `corrupt(payload)` before it reaches the wire.
// What its neighbours must do with such a payload (drop it, report the sender, let the step re-run) is the test.
import type { Runtime } from '../../src/gpu/runtime';
import {
  DelegatingCompute,
  LocalComputeBackend,
  wrapStages,
  type ComputeBackend,
  type MicrobatchKey,
  type StageCompute,
  type StageInput,
} from '../../src/model/stage-compute';

export interface Sabotage {
  /** Which payload to corrupt: the activations this peer sends forward, or the input gradient it sends back. */
  direction: 'act' | 'grad';
  corrupt: (payload: Uint8Array) => Uint8Array;
}

/** Payloads corrupted so far, per direction (the test checks the sabotage happened). */
export interface SabotageLog {
  act: MicrobatchKey[];
  grad: MicrobatchKey[];
}

class SabotagingCompute extends DelegatingCompute {
  private done = false;

  constructor(
    inner: StageCompute,
    private readonly plan: Sabotage,
    private readonly log: SabotageLog,
  ) {
    super(inner);
  }

  private maybe(direction: 'act' | 'grad', p: Uint8Array, key: MicrobatchKey): Uint8Array {
    if (this.done || this.plan.direction !== direction) return p;
    this.done = true;
    this.log[direction].push(key);
    return this.plan.corrupt(p);
  }

  override async forward(slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array> {
    return this.maybe('act', await this.inner.forward(slot, input, key), key);
  }
  override async forwardBackward(
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }> {
    const r = await this.inner.forwardBackward(slot, input, targets, lossScale, key);
    return r.gradIn ? { loss: r.loss, gradIn: this.maybe('grad', r.gradIn, key) } : r;
  }
  override async backward(slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null> {
    const g = await this.inner.backward(slot, gradOut, key);
    return g ? this.maybe('grad', g, key) : null;
  }
}

/** A ComputeBackend on its own Runtime whose stage corrupts one payload as `plan` says. */
export function sabotagingBackend(rt: Runtime, plan: Sabotage, log: SabotageLog): ComputeBackend {
  return wrapStages(new LocalComputeBackend(rt), (stage) => new SabotagingCompute(stage, plan, log));
}
