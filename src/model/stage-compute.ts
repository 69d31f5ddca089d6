// The GPU side of one swarm peer, as asynchronous host-array operations (docs/swarm.md). StageRuntime (the protocol
// logic) only talks to a StageCompute, so the compute can live in the same process (LocalStageCompute: Node peers,
// tests) or in a dedicated Web Worker behind comlink (WorkerStageCompute, src/swarm/worker-stage-compute.ts +
// src/worker/stage-worker.ts, speaking src/model/stage-worker-api.ts): Chromium has no RTCPeerConnection in workers,
// so a browser peer keeps the network in the page and the WGSL work in the worker. It lives in src/model so that the
// swarm (which drives it) and the worker (which hosts it) both depend on it and not on each other.
//
// What crosses a stage boundary through this interface is a wire payload (Uint8Array, src/model/stage-wire.ts): the
// compute encodes its outgoing activations / input gradients and decodes incoming payloads on the GPU with the
// run's codecs; fp32 (no compression) is the raw f32 bytes. A payload a codec refuses rejects the call with an
// error named 'CodecError' (isCodecError) before any GPU work of that call.
//
// Contract:
// - Calls are made one at a time by the owner (StageRuntime serializes its GPU work on one promise chain); an
//   implementation may assume no two calls overlap, except reads (readFlat, gradSumSquares, paramsDigest) after a
//   step's last backward.
// - Typed arrays passed in may be transferred (detached) by the implementation: callers must not use them afterwards.
// - Returned arrays are fresh copies owned by the caller.
// - `backward` of the first stage returns null without waiting for the GPU (errors surface at the next read).
import type { Runtime } from '../gpu/runtime';
import type { AdapterReport } from '../gpu/device';
import type { CompressSpec } from '../compress/spec';
import { stageBottleneckAt, type BottleneckConfig } from './bottleneck-config';
import type { GPTConfig } from './config';
import { initParams } from './init';
import { Stage, stageParamSpecs, type OptimizerHyper } from './stage';
import { embedsTokens, hasHead, type StageRange } from './stage-role';
import { StageWire, type CodecFactory, type MicrobatchKey } from './stage-wire';
import { createCodec } from '../compress/codec';
import { LocalOuterCompute, type OuterCompute } from './outer-compute';
import type { FlatRange } from './params';

export type { MicrobatchKey } from './stage-wire';

export type FlatWhich = 'params' | 'grads' | 'm' | 'v';
export type { FlatRange } from './params';

/** What to build: a stage of a model with B x T microbatches and `slots` in-flight microbatches. */
export interface StageSpec {
  model: GPTConfig;
  range: StageRange;
  B: number;
  T: number;
  slots: number;
  /** Index of the stage in the run: its output is boundary `stage` (the codec keys' stream). */
  stage: number;
  /** The run's seed (the codec keys' seed). */
  seed: number;
  /** Codecs and bottleneck at the stage's boundaries (COMPRESS_NONE: today's fp32 wire). */
  compress: CompressSpec;
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
  /** Values per token of the input activations (0: the stage reads tokens) and of the output (0: it ends in the loss). */
  inWidth: number;
  outWidth: number;
}

/** A first stage reads tokens; a later one the previous stage's activation payload (decoded on the GPU). */
export type StageInput = { tokens: Uint32Array } | { payload: Uint8Array };

export interface StageCompute {
  readonly layout: StageLayout;
  /** Parameters from a name -> values map (every parameter of the stage; extra names are ignored). */
  load(values: Map<string, Float32Array>): Promise<void>;
  /** GPT-2 init from `seed` (the same values as initParams over the whole model). */
  init(seed: number): Promise<void>;
  /** Non-last stage: forward of `slot` (microbatch `key`), returns the payload of its output activations. */
  forward(slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array>;
  /**
   * Last stage: forward + loss + backward at once (slot any). Returns the mean loss of the microbatch and the
   * payload of the gradient of the stage input (null when it is also the first stage).
   */
  forwardBackward(
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }>;
  /**
   * Non-last stage: backward of `slot` from the payload of the output gradient; returns the payload of the input
   * gradient, null on the first stage.
   */
  backward(slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null>;
  zeroGrads(): Promise<void>;
  /** The whole flat buffer, or with `range` only those values. */
  readFlat(which: FlatWhich, range?: FlatRange): Promise<Float32Array>;
  /** The whole flat buffer, or with `offset` the values from there on. */
  writeFlat(which: FlatWhich, data: Float32Array, offset?: number): Promise<void>;
  /** Sum of squared gradients (Stage.gradSumSquares). */
  gradSumSquares(opts?: { excludeTiedWte?: boolean }): Promise<number>;
  /** AdamW step t = `step`; with `digest` returns the params' digest after it (paramsDigest), else waits for the GPU. */
  optimizerStep(step: number, hyper: OptimizerHyper, opts: { scale?: number; digest?: boolean }): Promise<string | null>;
  /** digestFloats of the flat params, taken where they are (no copy of them crosses to the caller). */
  paramsDigest(): Promise<string>;
  /** Frees the stage's GPU buffers. */
  dispose(): Promise<void>;
  /** Local-steps mode: this replica's outer state (src/model/outer-compute.ts); absent in per-step mode. */
  readonly outer?: OuterCompute;
  /**
   * Host ms spent in the boundary codecs so far (StageWire.codecMs), where the stage runs in this thread; absent
   * behind a Worker (its codec time is then part of the compute the page measures).
   */
  readonly codecMs?: number;
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

/**
 * A StageCompute that hands every call to `inner`: the base of wrappers that change one thing (an adversary's
 * corrupted gradient, a test's sabotaged payload) and leave every computation to the real compute.
 */
export class DelegatingCompute implements StageCompute {
  constructor(protected readonly inner: StageCompute) {}

  get layout(): StageLayout {
    return this.inner.layout;
  }
  get outer(): OuterCompute | undefined {
    return this.inner.outer;
  }
  get codecMs(): number | undefined {
    return this.inner.codecMs;
  }
  load(values: Map<string, Float32Array>): Promise<void> {
    return this.inner.load(values);
  }
  init(seed: number): Promise<void> {
    return this.inner.init(seed);
  }
  forward(slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array> {
    return this.inner.forward(slot, input, key);
  }
  forwardBackward(
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }> {
    return this.inner.forwardBackward(slot, input, targets, lossScale, key);
  }
  backward(slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null> {
    return this.inner.backward(slot, gradOut, key);
  }
  zeroGrads(): Promise<void> {
    return this.inner.zeroGrads();
  }
  readFlat(which: FlatWhich, range?: FlatRange): Promise<Float32Array> {
    return this.inner.readFlat(which, range);
  }
  writeFlat(which: FlatWhich, data: Float32Array, offset?: number): Promise<void> {
    return this.inner.writeFlat(which, data, offset);
  }
  gradSumSquares(opts?: { excludeTiedWte?: boolean }): Promise<number> {
    return this.inner.gradSumSquares(opts);
  }
  optimizerStep(step: number, hyper: OptimizerHyper, opts: { scale?: number; digest?: boolean }): Promise<string | null> {
    return this.inner.optimizerStep(step, hyper, opts);
  }
  paramsDigest(): Promise<string> {
    return this.inner.paramsDigest();
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

/** `inner` with every stage it creates wrapped by `wrap` (the device, benchmark and teardown stay inner's). */
export function wrapStages(inner: ComputeBackend, wrap: (stage: StageCompute, spec: StageSpec) => StageCompute): ComputeBackend {
  return {
    get adapter() {
      return inner.adapter;
    },
    benchmark: (reps) => inner.benchmark(reps),
    createStage: async (spec) => wrap(await inner.createStage(spec), spec),
    destroy: () => inner.destroy(),
  };
}

/** Splits a flat buffer into named parameters by the layout. */
export function splitFlat(layout: StageLayout, flat: Float32Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const s of layout.slots) out.set(s.spec.name, flat.slice(s.offset, s.offset + s.size));
  return out;
}

function layoutOfStage(st: Stage, widths: { inWidth: number; outWidth: number }): StageLayout {
  const ps = st.params;
  return {
    total: ps.total,
    decayEnd: ps.decayEnd,
    slots: ps.slots.map((s) => ({ spec: { name: s.spec.name, shape: [...s.spec.shape] }, offset: s.offset, size: s.size })),
    first: embedsTokens(st.role),
    last: hasHead(st.role),
    slotCount: st.slotCount,
    count: ps.count,
    ...widths,
  };
}

/** The learned bottleneck at the stage's own boundaries (its start and end inside the model), or null. */
export function stageBottleneck(spec: StageSpec): BottleneckConfig | null {
  return stageBottleneckAt(spec.compress.bottleneck, spec.model.n_layer, spec.range);
}

/** Values per token at the stage's input and output boundaries, from the stage (n_embd, or the bottleneck's width). */
function boundaryWidths(st: Stage): { inWidth: number; outWidth: number } {
  return { inWidth: embedsTokens(st.role) ? 0 : st.inputWidth, outWidth: hasHead(st.role) ? 0 : st.outputWidth };
}

/** A Stage on a Runtime in this process. */
export class LocalStageCompute implements StageCompute {
  readonly stage: Stage;
  readonly layout: StageLayout;
  private readonly wire: StageWire;
  /** The learned bottleneck at this stage's boundaries (null: none). */
  private readonly bottleneck: BottleneckConfig | null;
  readonly outer?: LocalOuterCompute;

  get codecMs(): number {
    return this.wire.codecMs;
  }

  constructor(
    readonly rt: Runtime,
    readonly spec: StageSpec,
    codecs?: CodecFactory,
  ) {
    this.bottleneck = stageBottleneck(spec);
    this.stage = new Stage(rt, spec.model, spec.range, { B: spec.B, T: spec.T }, { slots: spec.slots, bottleneck: this.bottleneck });
    const widths = boundaryWidths(this.stage);
    this.layout = layoutOfStage(this.stage, widths);
    this.wire = new StageWire(rt, { ...widths, stage: spec.stage, seed: spec.seed, tokens: spec.B * spec.T, compress: spec.compress, codecs });
    const sync = spec.compress.sync;
    if (sync.mode === 'local')
      this.outer = new LocalOuterCompute(rt, this.stage.params, codecs ? codecs(rt, sync.codec) : createCodec(rt, sync.codec), spec.seed);
  }

  async load(values: Map<string, Float32Array>): Promise<void> {
    this.stage.params.load(values);
  }

  async init(seed: number): Promise<void> {
    const { model, range } = this.spec;
    this.stage.params.load(initParams(model, stageParamSpecs(model, range, this.bottleneck), seed, this.bottleneck));
  }

  /** Tokens, or the payload decoded on the GPU (a refused payload throws before the slot is touched). */
  private setInput(slot: number, input: StageInput): void {
    if ('tokens' in input) this.stage.setTokens(slot, input.tokens);
    else this.stage.setInput(slot, this.wire.decodeInput(input.payload));
  }

  async forward(slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array> {
    if (this.stage.parts.head) throw new Error('stage-compute: forward() of the last stage; use forwardBackward()');
    this.setInput(slot, input);
    return this.wire.encodeOutput(this.stage.forward(slot), key);
  }

  async forwardBackward(
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }> {
    this.setInput(slot, input);
    this.stage.setTargets(slot, targets);
    const lossT = this.stage.forward(slot);
    const dIn = this.stage.backward(slot, { lossScale });
    // Encoded now, before a later backward reuses the input-gradient scratch.
    const gradP = dIn ? this.wire.encodeInputGrad(dIn, key) : Promise.resolve(null);
    const loss = (await this.rt.read(lossT))[0];
    return { loss, gradIn: await gradP };
  }

  async backward(slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null> {
    const dIn = this.stage.backward(slot, { gradOut: this.wire.decodeOutputGrad(gradOut) });
    return dIn ? this.wire.encodeInputGrad(dIn, key) : null;
  }

  async zeroGrads(): Promise<void> {
    this.stage.zeroGrads();
  }

  readFlat(which: FlatWhich, range?: FlatRange): Promise<Float32Array> {
    return this.stage.params.readFlat(which, range);
  }

  async writeFlat(which: FlatWhich, data: Float32Array, offset?: number): Promise<void> {
    this.stage.params.writeFlat(which, data, offset);
  }

  gradSumSquares(opts: { excludeTiedWte?: boolean } = {}): Promise<number> {
    return this.stage.gradSumSquares(opts);
  }

  async optimizerStep(step: number, hyper: OptimizerHyper, opts: { scale?: number; digest?: boolean }): Promise<string | null> {
    this.stage.optimizerStep(step, hyper, { scale: opts.scale });
    if (opts.digest) return this.paramsDigest();
    await this.rt.flush();
    return null;
  }

  paramsDigest(): Promise<string> {
    return this.stage.params.digest('params');
  }

  async dispose(): Promise<void> {
    const ps = this.stage.params;
    for (const t of [ps.params, ps.grads, ps.m, ps.v]) this.rt.release(t);
    this.wire.dispose();
    this.outer?.dispose();
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
