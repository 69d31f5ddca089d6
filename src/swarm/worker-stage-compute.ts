// Page side of the stage worker (src/worker/stage-worker.ts, loaded by URL, never imported): a ComputeBackend whose
// stages run in a dedicated Web Worker behind comlink, speaking StageWorkerApi (src/model/stage-worker-api.ts).
// Arrays handed to a stage are transferred to the worker when they own their whole buffer (StageCompute's contract:
// callers do not reuse them), else copied.
import * as Comlink from 'comlink';
import type { AdapterReport } from '../gpu/device';
import type { OuterCompute } from '../model/outer-compute';
import type { OuterHyper, OuterPart } from '../model/outer-optimizer';
import type { OptimizerHyper } from '../model/stage';
import type { ComputeBackend, FlatRange, FlatWhich, MicrobatchKey, StageCompute, StageInput, StageLayout, StageSpec } from '../model/stage-compute';
import type { StageWorkerApi } from '../model/stage-worker-api';

function give<T extends Float32Array | Uint32Array | Uint8Array>(a: T): T {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? Comlink.transfer(a, [a.buffer as ArrayBuffer]) : a;
}

function giveInput(input: StageInput): StageInput {
  const a = 'tokens' in input ? input.tokens : input.payload;
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? Comlink.transfer(input, [a.buffer as ArrayBuffer]) : input;
}

/** A stage's local-steps outer state in the worker (StageWorkerApi's outer* calls). */
class WorkerOuterCompute implements OuterCompute {
  constructor(
    private readonly api: Comlink.Remote<StageWorkerApi>,
    private readonly id: number,
  ) {}
  reset(): Promise<void> {
    return this.api.outerReset(this.id);
  }
  encode(step: number, lane: number): Promise<Uint8Array> {
    return this.api.outerEncode(this.id, step, lane);
  }
  apply(payloads: Uint8Array[], hyper: OuterHyper): Promise<Float32Array> {
    return this.api.outerApply(this.id, payloads, hyper);
  }
  readFlat(which: OuterPart): Promise<Float32Array> {
    return this.api.outerReadFlat(this.id, which);
  }
  writeFlat(which: OuterPart, data: Float32Array): Promise<void> {
    return this.api.outerWriteFlat(this.id, which, give(data));
  }
}

export class WorkerStageCompute implements StageCompute {
  /** Local-steps mode only (the spec's sync mode), like LocalStageCompute's. */
  readonly outer?: OuterCompute;

  constructor(
    private readonly api: Comlink.Remote<StageWorkerApi>,
    private readonly id: number,
    readonly layout: StageLayout,
    localSteps: boolean,
  ) {
    if (localSteps) this.outer = new WorkerOuterCompute(api, id);
  }

  load(values: Map<string, Float32Array>): Promise<void> {
    return this.api.load(this.id, values);
  }
  init(seed: number): Promise<void> {
    return this.api.initStage(this.id, seed);
  }
  forward(slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array> {
    return this.api.forward(this.id, slot, giveInput(input), key);
  }
  forwardBackward(
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }> {
    // Two arrays: transfer both buffers in one message when they are whole.
    const a = 'tokens' in input ? input.tokens : input.payload;
    const whole = (x: ArrayBufferView) => x.byteOffset === 0 && x.byteLength === x.buffer.byteLength && a.buffer !== targets.buffer;
    const list = [a, targets].filter(whole).map((x) => x.buffer as ArrayBuffer);
    return this.api.forwardBackward(this.id, slot, Comlink.transfer(input, list), targets, lossScale, key);
  }
  backward(slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null> {
    return this.api.backward(this.id, slot, give(gradOut), key);
  }
  zeroGrads(): Promise<void> {
    return this.api.zeroGrads(this.id);
  }
  readFlat(which: FlatWhich, range?: FlatRange): Promise<Float32Array> {
    return this.api.readFlat(this.id, which, range);
  }
  writeFlat(which: FlatWhich, data: Float32Array, offset?: number): Promise<void> {
    return this.api.writeFlat(this.id, which, give(data), offset);
  }
  gradSumSquares(opts?: { excludeTiedWte?: boolean }): Promise<number> {
    return this.api.gradSumSquares(this.id, opts);
  }
  optimizerStep(step: number, hyper: OptimizerHyper, opts: { scale?: number; digest?: boolean }): Promise<string | null> {
    return this.api.optimizerStep(this.id, step, hyper, opts);
  }
  paramsDigest(): Promise<string> {
    return this.api.paramsDigest(this.id);
  }
  dispose(): Promise<void> {
    return this.api.dispose(this.id);
  }
}

export class WorkerComputeBackend implements ComputeBackend {
  private constructor(
    private readonly worker: Worker,
    private readonly api: Comlink.Remote<StageWorkerApi>,
    readonly adapter: AdapterReport,
  ) {}

  /** Starts the stage worker and acquires its WebGPU device. */
  static async start(worker?: Worker): Promise<WorkerComputeBackend> {
    const w = worker ?? new Worker(new URL('../worker/stage-worker.ts', import.meta.url), { type: 'module', name: 'tabswarm-stage' });
    const api = Comlink.wrap<StageWorkerApi>(w);
    try {
      const adapter = await api.open();
      return new WorkerComputeBackend(w, api, adapter);
    } catch (err) {
      w.terminate();
      throw err;
    }
  }

  benchmark(reps?: number): Promise<number> {
    return this.api.benchmark(reps);
  }

  async createStage(spec: StageSpec): Promise<StageCompute> {
    const { id, layout } = await this.api.createStage(spec);
    return new WorkerStageCompute(this.api, id, layout, spec.compress.sync.mode === 'local');
  }

  async destroy(): Promise<void> {
    try {
      await Promise.race([this.api.destroy(), new Promise((r) => setTimeout(r, 2000))]);
    } finally {
      this.api[Comlink.releaseProxy]();
      this.worker.terminate();
    }
  }
}
