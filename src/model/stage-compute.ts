// The GPU side of one swarm peer, as asynchronous host-array operations (docs/swarm.md). StageRuntime (the protocol
// logic) only talks to a StageCompute, so the compute can live in the same process (LocalStageCompute: Node peers,
// tests) or in a dedicated Web Worker behind comlink (WorkerStageCompute, src/swarm/worker-stage-compute.ts +
// src/worker/stage-worker.ts, speaking src/model/stage-worker-api.ts): Chromium has no RTCPeerConnection in workers,
// so a browser peer keeps the network in the page and the WGSL work in the worker. It lives in src/model so that the
// swarm (which drives it) and the worker (which hosts it) both depend on it and not on each other.
//
// Contract:
// - Calls are made one at a time by the owner (StageRuntime serializes its GPU work on one promise chain); an
//   implementation may assume no two calls overlap, except read-only reads (readFlat/readParams) between steps.
// - Typed arrays passed in may be transferred (detached) by the implementation: callers must not use them afterwards.
// - Returned arrays are fresh copies owned by the caller.
// - `backward` of the first stage returns null without waiting for the GPU (errors surface at the next read).
import type { Runtime } from '../gpu/runtime';
import type { AdapterReport } from '../gpu/device';
import type { GPTConfig } from './config';
import { initParams } from './init';
import { Stage, stageParamSpecs, type OptimizerHyper } from './stage';
import { embedsTokens, hasHead, type StageRange } from './stage-role';

export type FlatWhich = 'params' | 'grads' | 'm' | 'v';

/** What to build: a stage of a model with B x T microbatches and `slots` in-flight microbatches. */
export interface StageSpec {
  model: GPTConfig;
  range: StageRange;
  B: number;
  T: number;
  slots: number;
}

/** The flat-buffer layout of a stage (structured-clone friendly; the same shape as a ParamStore for layoutOf). */
export interface StageLayout {
  total: number;
  decayEnd: number;
  slots: { spec: { name: string; shape: number[] }; offset: number; size: number }[];
  /** Whether the stage reads tokens (role first or single). */
  first: boolean;
  /** Whether the stage ends in the loss (role last or single). */
  last: boolean;
  slotCount: number;
  /** Real (unpadded) parameter count. */
  count: number;
}

export type StageInput = { tokens: Uint32Array } | { acts: Float32Array };

export interface StageCompute {
  readonly layout: StageLayout;
  readonly slotCount: number;
  readonly first: boolean;
  readonly last: boolean;
  /** Parameters from a name -> values map (every parameter of the stage; extra names are ignored). */
  load(values: Map<string, Float32Array>): Promise<void>;
  /** GPT-2 init from `seed` (the same values as initParams over the whole model). */
  init(seed: number): Promise<void>;
  /** Non-last stage: forward of `slot`, returns its output activations [B*T*C]. */
  forward(slot: number, input: StageInput): Promise<Float32Array>;
  /**
   * Last stage: forward + loss + backward at once (slot any). Returns the mean loss of the microbatch and the
   * gradient of the stage input (null when it is also the first stage).
   */
  forwardBackward(slot: number, input: StageInput, targets: Uint32Array, lossScale: number): Promise<{ loss: number; gradIn: Float32Array | null }>;
  /** Non-last stage: backward of `slot` from the output gradient; returns the input gradient, null on the first stage. */
  backward(slot: number, gradOut: Float32Array): Promise<Float32Array | null>;
  zeroGrads(): Promise<void>;
  readFlat(which: FlatWhich): Promise<Float32Array>;
  writeFlat(which: FlatWhich, data: Float32Array): Promise<void>;
  /** Sum of squared gradients (Stage.gradSumSquares). */
  gradSumSquares(opts?: { excludeTiedWte?: boolean }): Promise<number>;
  /** AdamW step t = `step`; with `digest` returns the params read back (for a digest), else waits for the GPU. */
  optimizerStep(step: number, hyper: OptimizerHyper, opts: { scale?: number; readParams?: boolean }): Promise<Float32Array | null>;
  /** Frees the stage's GPU buffers. */
  dispose(): Promise<void>;
}

/** The device a peer computes on: benchmark at join, then one stage per assignment. */
export interface ComputeBackend {
  readonly adapter: AdapterReport | null;
  /** Tokens/s of a tiny 1-layer stage (forward + backward), best of `reps` after a warm-up. */
  benchmark(reps?: number): Promise<number>;
  createStage(spec: StageSpec): Promise<StageCompute>;
  /** Releases the device (and the worker, if any). */
  destroy(): Promise<void>;
}

/** Splits a flat buffer into named parameters by the layout. */
export function splitFlat(layout: StageLayout, flat: Float32Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const s of layout.slots) out.set(s.spec.name, flat.slice(s.offset, s.offset + s.size));
  return out;
}

function layoutOfStage(st: Stage): StageLayout {
  const ps = st.params;
  return {
    total: ps.total,
    decayEnd: ps.decayEnd,
    slots: ps.slots.map((s) => ({ spec: { name: s.spec.name, shape: [...s.spec.shape] }, offset: s.offset, size: s.size })),
    first: embedsTokens(st.role),
    last: hasHead(st.role),
    slotCount: st.slotCount,
    count: ps.count,
  };
}

/** A Stage on a Runtime in this process. */
export class LocalStageCompute implements StageCompute {
  readonly stage: Stage;
  readonly layout: StageLayout;

  constructor(
    readonly rt: Runtime,
    readonly spec: StageSpec,
  ) {
    this.stage = new Stage(rt, spec.model, spec.range, { B: spec.B, T: spec.T }, { slots: spec.slots });
    this.layout = layoutOfStage(this.stage);
  }

  get slotCount(): number {
    return this.stage.slotCount;
  }
  get first(): boolean {
    return this.layout.first;
  }
  get last(): boolean {
    return this.layout.last;
  }

  async load(values: Map<string, Float32Array>): Promise<void> {
    this.stage.params.load(values);
  }

  async init(seed: number): Promise<void> {
    const { model, range } = this.spec;
    this.stage.params.load(initParams(model, stageParamSpecs(model, range), seed));
  }

  private setInput(slot: number, input: StageInput): void {
    if ('tokens' in input) this.stage.setTokens(slot, input.tokens);
    else this.stage.setInput(slot, input.acts);
  }

  async forward(slot: number, input: StageInput): Promise<Float32Array> {
    if (this.stage.parts.head) throw new Error('stage-compute: forward() of the last stage; use forwardBackward()');
    this.setInput(slot, input);
    return this.rt.read(this.stage.forward(slot));
  }

  async forwardBackward(
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
  ): Promise<{ loss: number; gradIn: Float32Array | null }> {
    this.setInput(slot, input);
    this.stage.setTargets(slot, targets);
    const lossT = this.stage.forward(slot);
    const dIn = this.stage.backward(slot, { lossScale });
    const gradP = dIn ? this.rt.read(dIn) : Promise.resolve(null); // copy enqueued now, before a later backward reuses the scratch
    const loss = (await this.rt.read(lossT))[0];
    return { loss, gradIn: await gradP };
  }

  async backward(slot: number, gradOut: Float32Array): Promise<Float32Array | null> {
    const dIn = this.stage.backward(slot, { gradOut });
    return dIn ? this.rt.read(dIn) : null;
  }

  async zeroGrads(): Promise<void> {
    this.stage.zeroGrads();
  }

  readFlat(which: FlatWhich): Promise<Float32Array> {
    return this.stage.params.readFlat(which);
  }

  async writeFlat(which: FlatWhich, data: Float32Array): Promise<void> {
    this.stage.params.writeFlat(which, data);
  }

  gradSumSquares(opts: { excludeTiedWte?: boolean } = {}): Promise<number> {
    return this.stage.gradSumSquares(opts);
  }

  async optimizerStep(step: number, hyper: OptimizerHyper, opts: { scale?: number; readParams?: boolean }): Promise<Float32Array | null> {
    this.stage.optimizerStep(step, hyper, { scale: opts.scale });
    if (opts.readParams) return this.stage.params.readFlat('params');
    await this.rt.flush();
    return null;
  }

  async dispose(): Promise<void> {
    const ps = this.stage.params;
    for (const t of [ps.params, ps.grads, ps.m, ps.v]) this.rt.release(t);
  }
}

/** Tokens/s of a tiny 1-layer stage (forward + backward), best of `reps` after a warm-up. */
export async function benchmarkRuntime(rt: Runtime, reps = 2): Promise<number> {
  const config = { n_layer: 1, n_head: 2, n_embd: 32, vocab_size: 64, block_size: 16 };
  const B = 2;
  const T = 16;
  const st = new Stage(rt, config, { layerStart: 0, layerEnd: 1 }, { B, T });
  const tokens = new Uint32Array(B * T).map((_, i) => (i * 7) % 64);
  st.setTokens(0, tokens);
  st.setTargets(0, tokens);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    st.forward(0);
    st.backward(0, { lossScale: 1 / (B * T) });
    await rt.read(st.gradNormValue);
    const dt = performance.now() - t0;
    if (r > 0) best = Math.min(best, dt); // r = 0 compiles the pipelines
  }
  for (const t of [st.params.params, st.params.grads, st.params.m, st.params.v]) rt.release(t);
  return (B * T * 1000) / Math.max(best, 1e-3);
}

/** A Runtime in this process (Node peers, tests, or a page without a worker). */
export class LocalComputeBackend implements ComputeBackend {
  constructor(readonly rt: Runtime) {}

  get adapter(): AdapterReport | null {
    return this.rt.handle.report;
  }

  benchmark(reps = 2): Promise<number> {
    return benchmarkRuntime(this.rt, reps);
  }

  async createStage(spec: StageSpec): Promise<StageCompute> {
    return new LocalStageCompute(this.rt, spec);
  }

  async destroy(): Promise<void> {
    this.rt.destroy();
  }
}
