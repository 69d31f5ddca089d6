// The single-peer engine: one Stage spanning every layer, gradient accumulation over microbatches, global-norm
// clipping, AdamW with a warmup + cosine schedule; plus evaluation and sampling stages sharing its parameters.
// With `boundaries` it trains the model split into pipeline stages that share ONE ParamStore, and round-trips the
// activations and their gradients through the swarm's codecs at each boundary (in place, keyed like the swarm:
// docs/compression.md), so it computes what a compressed pipeline computes; with `bottleneck` the model has the
// learned down/up projections at its boundaries (src/model/bottleneck-config.ts). With `precision: 'f16'` the blocks'
// linears run f16 operands (src/model/half-linears.ts): weights, gradients and AdamW state stay f32; evaluate() is f32.
import type { GpuCodec, RoundingKey } from '../compress/codec';
import { tuneMatmul } from '../gpu/autotune';
import { tuneMatmulCached, type CachedTuneResult, type TuningStore } from '../gpu/tuning-cache';
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import { modelParamSpecs, validateBottleneck, type BottleneckConfig } from './bottleneck-config';
import { validateConfig, type GPTConfig } from './config';
import { initParams } from './init';
import { learningRate, type LrSchedule } from './schedule';
import type { Batch } from './data';
import type { Precision } from './half-linears';
import type { ParamStore } from './params';
import { DEFAULT_OPTIMIZER, Stage, type OptimizerHyper, type StageRange } from './stage';

export type { Batch } from './data';

/** What the engine needs of a wire codec at a stage boundary: its in-place round trip (src/compress GpuCodec). */
export type BoundaryCodec = Pick<GpuCodec, 'roundTrip'>;

/** Pipeline boundaries of the single-peer engine and the codecs of each direction. */
export interface TrainerBoundaries {
  /** Block counts after which a boundary sits (strictly increasing, each in 1..n_layer-1). */
  after: number[];
  /** Forward activations (key stream 2*b for boundary index b). */
  act: BoundaryCodec;
  /** Activation gradients (key stream 2*b + 1). */
  grad: BoundaryCodec;
}

/** A trainer's optimizer state as flat host arrays (the ParamStore's layout) and AdamW's step count. */
export interface TrainerState {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  stepsDone: number;
}

/** Options of one step: which microbatch index each batch has in the codec keys (default 0..n-1), the loss scale. */
export interface StepOptions {
  mb?: readonly number[];
  /** Gradient of the loss per token (default 1 / (B*T*micro.length): the mean over this step's microbatches). */
  lossScale?: number;
}

/** The stage ranges of a split of n_layer blocks at `after`. */
export function splitRanges(nLayer: number, after: readonly number[]): StageRange[] {
  const cuts = [0, ...after, nLayer];
  const out: StageRange[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    if (!(Number.isInteger(cuts[i + 1]) && cuts[i + 1] > cuts[i])) {
      throw new Error(`trainer: boundaries [${after.join(', ')}] are not strictly increasing inside 1..${nLayer - 1}`);
    }
    out.push({ layerStart: cuts[i], layerEnd: cuts[i + 1] });
  }
  return out;
}

export interface TrainerOptions {
  config: GPTConfig;
  /** Sequences per microbatch and tokens per sequence. */
  B: number;
  T: number;
  schedule: LrSchedule;
  optimizer?: Partial<OptimizerHyper>;
  /** Initial weights (a checkpoint); otherwise GPT-2 init from `seed`. */
  initial?: Map<string, Float32Array>;
  seed?: number;
  /** Run the matmul autotuner for this model's shapes before training (default true). */
  tune?: boolean;
  /** Where tuning results persist across starts (absent: tune in memory only). */
  tuningStore?: TuningStore;
  log?: (s: string) => void;
  /** Train split at these boundaries with these codecs (absent: one stage, today's engine bit for bit). */
  boundaries?: TrainerBoundaries;
  /** The model's learned bottleneck (absent or null: none). */
  bottleneck?: BottleneckConfig | null;
  /** The blocks' linears in training: 'f32' (default) or f16 operands with f32 accumulation (needs 'shader-f16'). */
  precision?: Precision;
}

export interface StepResult {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
}

export class Trainer {
  /** The whole model [0, n_layer) (bottleneck included, no codecs): its ParamStore holds every parameter. */
  readonly stage: Stage;
  /** The stages a step runs: [stage] without boundaries, else one per range of the split, sharing stage.params. */
  readonly stages: readonly Stage[];
  readonly config: GPTConfig;
  readonly bottleneck: BottleneckConfig | null;
  readonly hyper: OptimizerHyper;
  private evalStage?: Stage;
  private stepLosses: Tensor;
  private readonly maxMicro = 256;
  /** Moving average of how long a step's GPU work takes after recording (the wait hint). */
  private gpuMsEma = 0;
  /** Optimizer steps taken so far (AdamW's t). */
  stepsDone = 0;
  /** What create() did about matmul tuning (absent when tuning was off). */
  tuning?: CachedTuneResult;

  private constructor(
    private readonly rt: Runtime,
    readonly opts: TrainerOptions,
  ) {
    this.config = validateConfig(opts.config);
    this.bottleneck = opts.bottleneck ? validateBottleneck(this.config, opts.bottleneck) : null;
    this.hyper = { ...DEFAULT_OPTIMIZER, ...opts.optimizer, lr: opts.schedule.lr };
    const dims = { B: opts.B, T: opts.T };
    const bottleneck = this.bottleneck;
    const precision = opts.precision ?? 'f32';
    this.stage = new Stage(rt, this.config, { layerStart: 0, layerEnd: this.config.n_layer }, dims, { bottleneck, precision });
    const b = opts.boundaries;
    this.stages = b
      ? splitRanges(this.config.n_layer, b.after).map(
          (r) => new Stage(rt, this.config, r, dims, { params: this.stage.params, bottleneck, precision }),
        )
      : [this.stage];
    this.stepLosses = rt.tensor([this.maxMicro], 'step_losses');
  }

  static async create(rt: Runtime, opts: TrainerOptions): Promise<Trainer> {
    const t = new Trainer(rt, opts);
    t.stage.params.load(opts.initial ?? initParams(t.config, modelParamSpecs(t.config, t.bottleneck), opts.seed ?? 1337, t.bottleneck));
    if (opts.tune ?? true) {
      const shapes = [...t.stage.matmulShapes(), ...t.stages.flatMap((s) => s.matmulShapes())];
      if (opts.tuningStore) t.tuning = await tuneMatmulCached(rt, shapes, opts.tuningStore, { log: opts.log });
      else t.tuning = { loaded: 0, timed: await tuneMatmul(rt, shapes, { log: opts.log }), rejected: false };
    }
    await rt.flush();
    return t;
  }

  /** The one ParamStore every stage of this trainer shares (flat params, grads, AdamW m and v). */
  get params(): ParamStore {
    return this.stage.params;
  }

  /** The codec key of microbatch `mb` at boundary `b` in direction `dir` (0 activations, 1 gradients). */
  private key(it: number, mb: number, b: number, dir: 0 | 1): RoundingKey {
    return { seed: this.opts.seed ?? 1337, step: it, mb, stream: 2 * b + dir };
  }

  /** Records zeroing the gradients and forward + backward of every microbatch (losses into stepLosses[0..n)). */
  private recordGradients(it: number, micro: Batch[], o: StepOptions): void {
    if (micro.length < 1 || micro.length >= this.maxMicro) throw new Error(`step: ${micro.length} microbatches (1..${this.maxMicro - 1})`);
    if (o.mb && o.mb.length !== micro.length) throw new Error(`step: ${o.mb.length} microbatch indices for ${micro.length} microbatches`);
    const tokensPerMicro = this.opts.B * this.opts.T;
    const lossScale = o.lossScale ?? 1 / (tokensPerMicro * micro.length);
    const b = this.opts.boundaries;
    if (!b) {
      // Today's engine, launch for launch.
      const st = this.stage;
      st.zeroGrads();
      micro.forEach((m, k) => {
        st.setTokens(0, m.inputs);
        st.setTargets(0, m.targets);
        const loss = st.forward(0);
        this.rt.copy(loss, this.stepLosses, 1, 0, k);
        st.backward(0, { lossScale });
      });
      return;
    }
    const stages = this.stages;
    const first = stages[0];
    const last = stages[stages.length - 1];
    this.stage.zeroGrads();
    micro.forEach((m, k) => {
      const mb = o.mb?.[k] ?? k;
      first.setTokens(0, m.inputs);
      last.setTargets(0, m.targets);
      let out = first.forward(0);
      for (let s = 1; s < stages.length; s++) {
        const st = stages[s];
        st.setInput(0, out);
        const x = st.inputOf(0);
        b.act.roundTrip(this.rt, x, x.size, this.key(it, mb, s - 1, 0));
        out = st.forward(0);
      }
      this.rt.copy(out, this.stepLosses, 1, 0, k);
      let g = last.backward(0, { lossScale });
      for (let s = stages.length - 2; s >= 0; s--) {
        if (!g) throw new Error(`trainer: stage ${s + 1} returned no input gradient`);
        b.grad.roundTrip(this.rt, g, g.size, this.key(it, mb, s, 1));
        // lossScale: only an f16 stage reads it without a head (its gradients' static scale).
        g = stages[s].backward(0, { gradOut: g, lossScale });
      }
    });
  }

  /** Records the optimizer step for iteration `it` (AdamW's t advances); returns the learning rate. */
  private recordApply(it: number): number {
    const lr = learningRate(it, this.opts.schedule);
    this.stepsDone++;
    this.stage.optimizerStep(this.stepsDone, { ...this.hyper, lr });
    return lr;
  }

  /**
   * One optimizer step over `micro` microbatches (gradient accumulation; the loss is the mean over all of them).
   * `it` is the 0-based iteration for the learning-rate schedule.
   */
  async step(it: number, micro: Batch[], o: StepOptions = {}): Promise<StepResult> {
    const st = this.stage;
    this.recordGradients(it, micro, o);
    const lr = this.recordApply(it);
    // Sleep through most of the expected GPU time instead of letting Dawn spin (see Runtime.flush).
    const t0 = performance.now();
    // One readback for the losses and the gradient norm (each readback is a GPU round trip).
    this.rt.copy(st.gradNormValue, this.stepLosses, 1, 0, micro.length);
    const sleepMs = 0.8 * this.gpuMsEma;
    const readback = await this.rt.read(this.stepLosses, micro.length + 1, { sleepMs, yieldCpu: true });
    const losses = readback.subarray(0, micro.length);
    const norm = readback[micro.length];
    const waited = performance.now() - t0;
    // Work that was done before the sleep ended measures the sleep, not the GPU: averaged in, an overestimate (one
    // slow step: a first dispatch's compile, a burst of load) would sustain itself, shrinking ~4% a step and
    // lengthening every step by the oversleep (measured: a 4.4 s first step left steps of the reference config at
    // 3 s, 20 steps later 1.2 s). A wait that ends within 10% of the sleep (an estimate that is right leaves ~25% to
    // poll) shrinks the estimate by 30% instead.
    const overslept = sleepMs > 1 && waited < 1.1 * sleepMs + 1;
    this.gpuMsEma = this.gpuMsEma === 0 ? waited : overslept ? 0.7 * this.gpuMsEma : 0.8 * this.gpuMsEma + 0.2 * waited;
    let sum = 0;
    for (const l of losses) sum += l;
    const loss = sum / micro.length;
    if (!Number.isFinite(loss)) throw new Error(`step ${it}: loss is ${loss} (diverged)`);
    return { step: it, loss, lr, gradNorm: norm };
  }

  /**
   * A step without applying it: zeroes the gradients, runs forward + backward of every microbatch (codecs keyed by
   * `it`) and leaves the accumulated gradients in `params.grads`. Returns the mean loss. `applyStep(it)` after it is
   * exactly `step(it, micro)`.
   */
  async gradients(it: number, micro: Batch[], o: StepOptions = {}): Promise<number> {
    this.recordGradients(it, micro, o);
    const losses = await this.rt.read(this.stepLosses, micro.length);
    return losses.reduce((a, b) => a + b, 0) / micro.length;
  }

  /** Clips and applies the gradients in `params.grads` (AdamW step stepsDone + 1, lr of iteration `it`). */
  async applyStep(it: number): Promise<{ lr: number; gradNorm: number }> {
    const lr = this.recordApply(it);
    const gradNorm = (await this.rt.read(this.stage.gradNormValue))[0];
    return { lr, gradNorm };
  }

  /** Copies of the flat parameters, AdamW moments and step count (e.g. to swap simulated replicas in and out). */
  async saveState(): Promise<TrainerState> {
    const ps = this.params;
    return { params: await ps.readFlat('params'), m: await ps.readFlat('m'), v: await ps.readFlat('v'), stepsDone: this.stepsDone };
  }

  /** Restores what saveState returned (lengths checked against the store). */
  loadState(s: TrainerState): void {
    if (!Number.isInteger(s.stepsDone) || s.stepsDone < 0) throw new Error(`loadState: stepsDone ${s.stepsDone} is not a non-negative integer`);
    const ps = this.params;
    ps.writeFlat('params', s.params);
    ps.writeFlat('m', s.m);
    ps.writeFlat('v', s.v);
    this.stepsDone = s.stepsDone;
  }

  /** Mean loss over evaluation batches (forward only, no gradient). */
  async evaluate(batches: Batch[]): Promise<number> {
    if (batches.length === 0) throw new Error('evaluate: no batches');
    // The model itself (bottleneck included, no codecs, f32 whatever the training precision): what a checkpoint of it
    // computes.
    this.evalStage ??= new Stage(
      this.rt,
      this.config,
      { layerStart: 0, layerEnd: this.config.n_layer },
      { B: this.opts.B, T: this.opts.T },
      { params: this.stage.params, bottleneck: this.bottleneck },
    );
    const es = this.evalStage;
    const n = Math.min(batches.length, this.maxMicro);
    for (let k = 0; k < n; k++) {
      es.setTokens(0, batches[k].inputs);
      es.setTargets(0, batches[k].targets);
      this.rt.copy(es.forward(0), this.stepLosses, 1, 0, k);
    }
    const losses = await this.rt.read(this.stepLosses, n);
    return losses.reduce((a, b) => a + b, 0) / n;
  }

  exportParams(): Promise<Map<string, Float32Array>> {
    return this.stage.params.read('params');
  }
}
