// The single-peer engine: one Stage spanning every layer, gradient accumulation over microbatches, global-norm
// clipping, AdamW with a warmup + cosine schedule; plus evaluation and sampling stages sharing its parameters.
import { tuneMatmul } from '../gpu/autotune';
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import { gpt2ParamSpecs, validateConfig, type GPTConfig } from './config';
import { initParams } from './init';
import { learningRate, type LrSchedule } from './schedule';
import type { Batch } from './data';
import { DEFAULT_OPTIMIZER, Stage, type OptimizerHyper } from './stage';

export type { Batch } from './data';

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
  log?: (s: string) => void;
}

export interface StepResult {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
}

export class Trainer {
  readonly stage: Stage;
  readonly config: GPTConfig;
  readonly hyper: OptimizerHyper;
  private evalStage?: Stage;
  private stepLosses: Tensor;
  private readonly maxMicro = 256;
  /** Moving average of how long a step's GPU work takes after recording (the wait hint). */
  private gpuMsEma = 0;
  /** Optimizer steps taken so far (AdamW's t). */
  stepsDone = 0;

  private constructor(
    private readonly rt: Runtime,
    readonly opts: TrainerOptions,
  ) {
    this.config = validateConfig(opts.config);
    this.hyper = { ...DEFAULT_OPTIMIZER, ...opts.optimizer, lr: opts.schedule.lr };
    this.stage = new Stage(rt, this.config, { layerStart: 0, layerEnd: this.config.n_layer }, { B: opts.B, T: opts.T });
    this.stepLosses = rt.tensor([this.maxMicro], 'step_losses');
  }

  static async create(rt: Runtime, opts: TrainerOptions): Promise<Trainer> {
    const t = new Trainer(rt, opts);
    t.stage.params.load(opts.initial ?? initParams(t.config, gpt2ParamSpecs(t.config), opts.seed ?? 1337));
    if (opts.tune ?? true) await tuneMatmul(rt, t.stage.matmulShapes(), { log: opts.log });
    await rt.flush();
    return t;
  }

  /**
   * One optimizer step over `micro` microbatches (gradient accumulation; the loss is the mean over all of them).
   * `it` is the 0-based iteration for the learning-rate schedule.
   */
  async step(it: number, micro: Batch[]): Promise<StepResult> {
    if (micro.length < 1 || micro.length >= this.maxMicro) throw new Error(`step: ${micro.length} microbatches (1..${this.maxMicro - 1})`);
    const st = this.stage;
    const tokensPerMicro = this.opts.B * this.opts.T;
    st.zeroGrads();
    micro.forEach((b, k) => {
      st.setTokens(0, b.inputs);
      st.setTargets(0, b.targets);
      const loss = st.forward(0);
      this.rt.copy(loss, this.stepLosses, 1, 0, k);
      st.backward(0, { lossScale: 1 / (tokensPerMicro * micro.length) });
    });
    const lr = learningRate(it, this.opts.schedule);
    this.stepsDone++;
    st.optimizerStep(this.stepsDone, { ...this.hyper, lr });
    // Sleep through most of the expected GPU time instead of letting Dawn spin (see Runtime.flush).
    const t0 = performance.now();
    // One readback for the losses and the gradient norm (each readback is a GPU round trip).
    this.rt.copy(st.gradNormValue, this.stepLosses, 1, 0, micro.length);
    const readback = await this.rt.read(this.stepLosses, micro.length + 1, { sleepMs: 0.8 * this.gpuMsEma });
    const losses = readback.subarray(0, micro.length);
    const norm = readback[micro.length];
    const waited = performance.now() - t0;
    this.gpuMsEma = this.gpuMsEma === 0 ? waited : 0.8 * this.gpuMsEma + 0.2 * waited;
    let sum = 0;
    for (const l of losses) sum += l;
    const loss = sum / micro.length;
    if (!Number.isFinite(loss)) throw new Error(`step ${it}: loss is ${loss} (diverged)`);
    return { step: it, loss, lr, gradNorm: norm };
  }

  /** Mean loss over evaluation batches (forward only, no gradient). */
  async evaluate(batches: Batch[]): Promise<number> {
    if (batches.length === 0) throw new Error('evaluate: no batches');
    this.evalStage ??= new Stage(
      this.rt,
      this.config,
      { layerStart: 0, layerEnd: this.config.n_layer },
      { B: this.opts.B, T: this.opts.T },
      { params: this.stage.params },
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
