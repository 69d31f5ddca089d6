// A swarm peer's compute that corrupts what it sends, once: the real LocalStageCompute does every computation, and
// the first payload of the chosen direction it returns is replaced by `corrupt(payload)` before it reaches the wire.
// What its neighbours must do with such a payload (drop it, report the sender, let the step re-run) is the test.
import type { AdapterReport } from '../../src/gpu/device';
import type { Runtime } from '../../src/gpu/runtime';
import type { OptimizerHyper } from '../../src/model/stage';
import {
  LocalComputeBackend,
  type ComputeBackend,
  type FlatWhich,
  type MicrobatchKey,
  type StageCompute,
  type StageInput,
  type StageLayout,
  type StageSpec,
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

class SabotagingCompute implements StageCompute {
  private done = false;

  constructor(
    private readonly inner: StageCompute,
    private readonly plan: Sabotage,
    private readonly log: SabotageLog,
  ) {}

  get layout(): StageLayout {
    return this.inner.layout;
  }

  private maybe(direction: 'act' | 'grad', p: Uint8Array, key: MicrobatchKey): Uint8Array {
    if (this.done || this.plan.direction !== direction) return p;
    this.done = true;
    this.log[direction].push(key);
    return this.plan.corrupt(p);
  }

  load(values: Map<string, Float32Array>): Promise<void> {
    return this.inner.load(values);
  }
  init(seed: number): Promise<void> {
    return this.inner.init(seed);
  }
  async forward(slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array> {
    return this.maybe('act', await this.inner.forward(slot, input, key), key);
  }
  async forwardBackward(
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }> {
    const r = await this.inner.forwardBackward(slot, input, targets, lossScale, key);
    return r.gradIn ? { loss: r.loss, gradIn: this.maybe('grad', r.gradIn, key) } : r;
  }
  async backward(slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null> {
    const g = await this.inner.backward(slot, gradOut, key);
    return g ? this.maybe('grad', g, key) : null;
  }
  zeroGrads(): Promise<void> {
    return this.inner.zeroGrads();
  }
  readFlat(which: FlatWhich): Promise<Float32Array> {
    return this.inner.readFlat(which);
  }
  writeFlat(which: FlatWhich, data: Float32Array): Promise<void> {
    return this.inner.writeFlat(which, data);
  }
  gradSumSquares(opts?: { excludeTiedWte?: boolean }): Promise<number> {
    return this.inner.gradSumSquares(opts);
  }
  optimizerStep(step: number, hyper: OptimizerHyper, opts: { scale?: number; readParams?: boolean }): Promise<Float32Array | null> {
    return this.inner.optimizerStep(step, hyper, opts);
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

/** A ComputeBackend on its own Runtime whose stage corrupts one payload as `plan` says. */
export function sabotagingBackend(rt: Runtime, plan: Sabotage, log: SabotageLog): ComputeBackend {
  const inner = new LocalComputeBackend(rt);
  return {
    get adapter(): AdapterReport | null {
      return inner.adapter;
    },
    benchmark: (reps) => inner.benchmark(reps),
    createStage: async (spec: StageSpec) => new SabotagingCompute(await inner.createStage(spec), plan, log),
    destroy: () => inner.destroy(),
  };
}
