// What the stage worker (src/worker/stage-worker.ts) exposes over comlink, and what its page-side client
// (src/swarm/worker-stage-compute.ts) calls: the StageCompute operations addressed by stage id, plus device and
// lifecycle calls. Declared here, below both, so neither imports the other.
import type { AdapterReport } from '../gpu/device';
import type { FlatRange, FlatWhich, MicrobatchKey, StageInput, StageLayout, StageSpec } from './stage-compute';
import type { OuterHyper, OuterPart } from './outer-optimizer';
import type { OptimizerHyper } from './stage';

export interface StageWorkerApi {
  /** Acquires the device (once). */
  open(): Promise<AdapterReport>;
  /** Tokens/s of a tiny stage (benchmarkRuntime). */
  benchmark(reps?: number): Promise<number>;
  createStage(spec: StageSpec): Promise<{ id: number; layout: StageLayout }>;
  load(id: number, values: Map<string, Float32Array>): Promise<void>;
  initStage(id: number, seed: number): Promise<void>;
  /** Boundary tensors travel as wire payloads, encoded / decoded on the worker's GPU (StageCompute). */
  forward(id: number, slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array>;
  forwardBackward(
    id: number,
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }>;
  backward(id: number, slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null>;
  zeroGrads(id: number): Promise<void>;
  readFlat(id: number, which: FlatWhich, range?: FlatRange): Promise<Float32Array>;
  writeFlat(id: number, which: FlatWhich, data: Float32Array, offset?: number): Promise<void>;
  gradSumSquares(id: number, opts?: { excludeTiedWte?: boolean }): Promise<number>;
  optimizerStep(id: number, step: number, hyper: OptimizerHyper, opts: { scale?: number; digest?: boolean }): Promise<string | null>;
  paramsDigest(id: number): Promise<string>;
  /** Local-steps mode: stage `id`'s outer state (OuterCompute, src/model/outer-compute.ts); refused in per-step mode. */
  outerReset(id: number): Promise<void>;
  outerEncode(id: number, step: number, lane: number): Promise<Uint8Array>;
  outerApply(id: number, payloads: Uint8Array[], hyper: OuterHyper): Promise<Float32Array>;
  outerReadFlat(id: number, which: OuterPart): Promise<Float32Array>;
  outerWriteFlat(id: number, which: OuterPart, data: Float32Array): Promise<void>;
  /** Frees stage `id`'s GPU buffers. */
  dispose(id: number): Promise<void>;
  /** Releases the device; the page terminates the worker afterwards. */
  destroy(): Promise<void>;
}
