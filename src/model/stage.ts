// A pipeline stage: GPT-2 blocks [layerStart, layerEnd) plus the parts its role brings (src/model/stage-role.ts): a
// first stage owns the embeddings and reads tokens (Embedding), a last stage owns ln_f, the tied lm_head (its own
// copy of wte when it is not also the first stage) and the loss (LmHead); a single stage owns both, a middle one
// neither. The boundary is activations: forward takes [B,T,C] in and gives [B,T,C] out; backward takes the gradient
// of the output and gives the gradient of the input. A single-peer model is the stage [0, n_layer).
// With a learned bottleneck (src/model/bottleneck-config.ts) a stage that starts at a boundary takes [B,T,k] in
// through a BottleneckIn, one that ends at a boundary gives [B,T,k] out through a BottleneckOut, and a boundary
// strictly inside a stage's range runs the down- and up-projection back to back (the single-peer model).
// Parameters are reached through handles resolved once here (src/model/param-handles.ts); every matmul takes its
// case from the stage's plan (src/model/matmul-plan.ts), which is also the autotuner's shape list.
// With `precision: 'f16'` the blocks' four linears run f16 operands with f32 accumulation and f32 master weights,
// gradients and optimizer state (src/model/half-linears.ts); the default 'f32' launches exactly what it always did.
import { adamwUpdate } from '../gpu/ops/adamw';
import { gradNorm, gradNormScratchSize } from '../gpu/ops/gradnorm';
import type { MatmulShape } from '../gpu/autotune';
import type { Runtime } from '../gpu/runtime';
import { expectShape, type Tensor } from '../gpu/tensor';
import { allocBlockScratch, allocLayerActs, blockBackward, blockForward, type BlockDims, type BlockScratch, type LayerActs } from './block';
import { bottleneckDownSpecs, bottleneckUpSpecs, validateBottleneck, type BottleneckConfig } from './bottleneck-config';
import { downProjection, upProjection, type BottleneckDims, type BottleneckIn, type BottleneckOut } from './bottleneck';
import { blockParamSpecs, LNF_B, LNF_W, validateConfig, WPE, WTE, type GPTConfig, type ParamSpec } from './config';
import { Embedding } from './embedding';
import { LmHead } from './lm-head';
import { blockMatmuls, bottleneckMatmuls, headMatmuls, planCases, type BlockMatmuls, type LinearMatmuls } from './matmul-plan';
import {
  bottleneckDownParams,
  bottleneckUpParams,
  embeddingParams,
  headParams,
  layerParams,
  type LayerParams,
  type ParamsAndGrads,
} from './param-handles';
import { ParamStore } from './params';
import { embedsTokens, hasHead, stageRole, validateRange, type StageRange, type StageRole } from './stage-role';
import { gradScaleExp, HalfLinears, PRECISIONS, type Precision } from './half-linears';

export type { StageRange, StageRole } from './stage-role';

export interface MicroDims {
  /** Sequences per microbatch. */
  B: number;
  /** Tokens per sequence (<= block_size). */
  T: number;
}

export interface OptimizerHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; 0 disables clipping. */
  gradClip: number;
}

export const DEFAULT_OPTIMIZER: OptimizerHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, gradClip: 1.0 };

/**
 * The parameters a stage holds, in checkpoint order. The last stage holds a tied copy of wte. With a bottleneck,
 * the stage also holds the up-projection of a boundary at its start, the down-projection of one at its end and both
 * of one inside its range (after the GPT-2 parameters, in boundary order: modelParamSpecs' order for [0, n_layer)).
 */
export function stageParamSpecs(config: GPTConfig, r: StageRange, bottleneck?: BottleneckConfig | null): ParamSpec[] {
  validateRange(config, r);
  const role = stageRole(config, r);
  const C = config.n_embd;
  const specs: ParamSpec[] = [];
  if (embedsTokens(role) || hasHead(role)) specs.push({ name: WTE, shape: [config.vocab_size, C], decay: true, layer: -1 });
  if (embedsTokens(role)) specs.push({ name: WPE, shape: [config.block_size, C], decay: true, layer: -1 });
  for (let l = r.layerStart; l < r.layerEnd; l++) specs.push(...blockParamSpecs(config, l));
  if (hasHead(role)) {
    specs.push({ name: LNF_W, shape: [C], decay: false, layer: config.n_layer }, { name: LNF_B, shape: [C], decay: false, layer: config.n_layer });
  }
  if (bottleneck) {
    validateBottleneck(config, bottleneck);
    for (const l of bottleneck.after) {
      if (l > r.layerStart && l <= r.layerEnd) specs.push(...bottleneckDownSpecs(config, bottleneck, l));
      if (l >= r.layerStart && l < r.layerEnd) specs.push(...bottleneckUpSpecs(config, bottleneck, l));
    }
  }
  return specs;
}

/**
 * The parts a role brings, present exactly when the role has them. A bottleneck half exists where the model has a
 * boundary at the stage's start (`bottleneckIn`: never on a stage that embeds tokens) or end (`bottleneckOut`:
 * never on a stage with the head).
 */
export type StageParts =
  | { role: 'first'; embedding: Embedding; head: null; bottleneckIn: null; bottleneckOut: BottleneckOut | null }
  | { role: 'middle'; embedding: null; head: null; bottleneckIn: BottleneckIn | null; bottleneckOut: BottleneckOut | null }
  | { role: 'last'; embedding: null; head: LmHead; bottleneckIn: BottleneckIn | null; bottleneckOut: null }
  | { role: 'single'; embedding: Embedding; head: LmHead; bottleneckIn: null; bottleneckOut: null };

interface PartMakers {
  embedding: () => Embedding;
  head: () => LmHead;
  /** The up-projection at the stage's start, when the model has a boundary there. */
  bottleneckIn: () => BottleneckIn | null;
  /** The down-projection at the stage's end, when the model has a boundary there. */
  bottleneckOut: () => BottleneckOut | null;
}

function partsOf(role: StageRole, make: PartMakers): StageParts {
  switch (role) {
    case 'first':
      return { role, embedding: make.embedding(), head: null, bottleneckIn: null, bottleneckOut: make.bottleneckOut() };
    case 'middle':
      return { role, embedding: null, head: null, bottleneckIn: make.bottleneckIn(), bottleneckOut: make.bottleneckOut() };
    case 'last':
      return { role, embedding: null, head: make.head(), bottleneckIn: make.bottleneckIn(), bottleneckOut: null };
    case 'single':
      return { role, embedding: make.embedding(), head: make.head(), bottleneckIn: null, bottleneckOut: null };
  }
}

/** A boundary strictly inside the stage's range, before its block `j` (> 0): down then up, back to back. */
interface InnerBoundary {
  j: number;
  down: BottleneckOut;
  up: BottleneckIn;
}

/** Per slot and inner boundary: the narrow tensor z [N, k] and the up-projected x' [N, C] (block j's input). */
interface InnerActs {
  z: Tensor;
  x: Tensor;
}

/** What one in-flight microbatch keeps for its backward pass (the role parts keep their own per slot). */
class Slot {
  forwarded = false;
  constructor(
    /** First stage: the embedding output; other stages: the received activations ([N, k] after a bottleneck). */
    readonly input: Tensor,
    readonly layers: LayerActs[],
    /** The up-projected input [N, C] (a stage starting at a bottleneck), else null. */
    readonly expanded: Tensor | null,
    /** Per inner boundary (in the stage's order). */
    readonly inner: InnerActs[],
    /** The down-projected output [N, k] (a stage ending at a bottleneck), else null. */
    readonly narrowOut: Tensor | null,
    /** What block j's forward reads: the input, the expanded input, the previous block's out or an inner x'. */
    readonly blockIn: Tensor[],
  ) {}

  /** The last block's output (the head's or the down-projection's input). */
  get output(): Tensor {
    return this.layers[this.layers.length - 1].out;
  }
}

export interface StageOptions {
  /** In-flight microbatches whose activations are kept (pipeline depth); 1 for plain gradient accumulation. */
  slots?: number;
  /** Share another stage's parameters (e.g. a B=1 sampler beside the trainer). */
  params?: ParamStore;
  /** The model's learned bottleneck (boundaries and width); absent or null: none. */
  bottleneck?: BottleneckConfig | null;
  /** The blocks' linears: 'f32' (default) or 'f16' operands (needs 'shader-f16'; src/model/half-linears.ts). */
  precision?: Precision;
}

export class Stage {
  readonly config: GPTConfig;
  readonly range: StageRange;
  readonly dims: MicroDims;
  readonly parts: StageParts;
  readonly params: ParamStore;
  /** Per block of the stage (index j = layer layerStart + j): its parameter and gradient handles. */
  private readonly layerWeights: ParamsAndGrads<LayerParams>[];
  /** The matmuls every block launches (the head keeps its own). */
  private readonly blockPlan: BlockMatmuls;
  /** The blocks' f16 linears (precision 'f16'), else null. */
  private readonly half: HalfLinears | null;
  /** The bottleneck projections this stage launches (for matmulShapes). */
  private readonly bottleneckLinears: LinearMatmuls[];
  private readonly innerBoundaries: InnerBoundary[];
  /** Backward scratch [N, k] for the gradient of a narrow tensor (null without a bottleneck half). */
  private readonly dNarrow: Tensor | null;
  private readonly blockDims: BlockDims;
  private readonly slots: Slot[];
  // Backward scratch, shared by all layers and slots.
  private readonly scratch: BlockScratch;
  private readonly gradNormPartials: Tensor;
  /** [0] = global gradient norm of the last optimizer step, [0] of gradScale = the clip factor applied. */
  readonly gradNormValue: Tensor;
  private readonly gradScale: Tensor;

  constructor(
    private readonly rt: Runtime,
    config: GPTConfig,
    range: StageRange,
    dims: MicroDims,
    opts: StageOptions = {},
  ) {
    this.config = validateConfig(config);
    validateRange(config, range);
    if (!Number.isInteger(dims.B) || dims.B < 1) throw new Error(`stage: microbatch size B must be a positive integer, got ${dims.B}`);
    if (!Number.isInteger(dims.T) || dims.T < 1 || dims.T > config.block_size) {
      throw new Error(`stage: sequence length T=${dims.T} must be in 1..block_size (${config.block_size})`);
    }
    this.range = range;
    this.dims = dims;
    const role = stageRole(config, range);
    const bn = opts.bottleneck ?? null;
    const specs = stageParamSpecs(config, range, bn);
    if (opts.params) {
      for (const s of specs) if (!opts.params.has(s.name)) throw new Error(`stage: shared parameters lack ${s.name}`);
      this.params = opts.params;
    } else {
      this.params = new ParamStore(rt, specs, `stage${range.layerStart}-${range.layerEnd}`);
    }
    const { B, T } = dims;
    const { n_embd: C, n_head: NH, vocab_size: V } = config;
    const N = B * T;
    const nSlots = opts.slots ?? 1;
    this.blockDims = { B, T, C, NH };
    this.blockPlan = blockMatmuls({ N, C });
    const precision = opts.precision ?? 'f32';
    if (!PRECISIONS.includes(precision)) throw new Error(`stage: precision '${String(precision)}' is not one of ${PRECISIONS.join(', ')}`);
    this.half =
      precision === 'f16'
        ? new HalfLinears(rt, this.blockPlan, range.layerEnd - range.layerStart, `stage${range.layerStart}-${range.layerEnd}`)
        : null;
    this.layerWeights = [];
    for (let l = range.layerStart; l < range.layerEnd; l++) this.layerWeights.push(layerParams(this.params, l));
    const at = (l: number) => bn !== null && bn.after.includes(l);
    const bDims: BottleneckDims | null = bn && { N, C, k: bn.width, passthrough: bn.passthrough };
    const bPlan = bDims && bottleneckMatmuls(bDims);
    const down = (l: number) => (bDims && bPlan ? downProjection(rt, l, bottleneckDownParams(this.params, l), bPlan.down, bDims) : null);
    const up = (l: number) => (bDims && bPlan ? upProjection(rt, l, bottleneckUpParams(this.params, l), bPlan.up, bDims) : null);
    this.parts = partsOf(role, {
      embedding: () => new Embedding(rt, embeddingParams(this.params), { B, T, C, V }, nSlots),
      head: () => new LmHead(rt, headParams(this.params), headMatmuls({ N, C, V }), { N, C, V }, nSlots),
      bottleneckIn: () => (at(range.layerStart) ? up(range.layerStart) : null),
      bottleneckOut: () => (at(range.layerEnd) ? down(range.layerEnd) : null),
    });
    this.innerBoundaries = [];
    for (let l = range.layerStart + 1; l < range.layerEnd; l++) {
      const [d, u] = [at(l) ? down(l) : null, at(l) ? up(l) : null];
      if (d && u) this.innerBoundaries.push({ j: l - range.layerStart, down: d, up: u });
    }
    const { bottleneckIn, bottleneckOut } = this.parts;
    const hasDown = bottleneckOut !== null || this.innerBoundaries.length > 0;
    const hasUp = bottleneckIn !== null || this.innerBoundaries.length > 0;
    this.bottleneckLinears = bPlan ? [...(hasDown ? [bPlan.down] : []), ...(hasUp ? [bPlan.up] : [])] : [];
    this.dNarrow = bDims && (hasDown || hasUp) ? rt.tensor([N, bDims.k], 'dnarrow') : null;
    this.slots = Array.from({ length: nSlots }, (_, i) => {
      const layers: LayerActs[] = [];
      for (let l = range.layerStart; l < range.layerEnd; l++) layers.push(allocLayerActs(rt, this.blockDims, `slot${i}.h${l}`));
      const k = bDims?.k ?? C;
      const input = rt.tensor([N, bottleneckIn ? k : C], `slot${i}.${embedsTokens(role) ? 'encoded' : 'input'}`);
      const expanded = bottleneckIn ? rt.tensor([N, C], `slot${i}.expanded`) : null;
      const inner = this.innerBoundaries.map((b) => ({ z: rt.tensor([N, k], `slot${i}.z${b.j}`), x: rt.tensor([N, C], `slot${i}.x${b.j}`) }));
      const narrowOut = bottleneckOut ? rt.tensor([N, k], `slot${i}.narrow_out`) : null;
      const blockIn = layers.map((_, j) => {
        const ib = this.innerBoundaries.findIndex((b) => b.j === j);
        if (ib >= 0) return inner[ib].x;
        return j === 0 ? (expanded ?? input) : layers[j - 1].out;
      });
      return new Slot(input, layers, expanded, inner, narrowOut, blockIn);
    });
    this.scratch = allocBlockScratch(rt, this.blockDims);
    this.gradNormPartials = rt.tensor([gradNormScratchSize(this.params.total)], 'gradnorm_partials');
    this.gradNormValue = rt.tensor([1], 'grad_norm');
    this.gradScale = rt.tensor([1], 'grad_scale');
  }

  get precision(): Precision {
    return this.half ? 'f16' : 'f32';
  }

  get role(): StageRole {
    return this.parts.role;
  }

  get slotCount(): number {
    return this.slots.length;
  }

  /** Every matmul shape this stage launches (for the autotuner): its launch plan, flattened. */
  matmulShapes(): MatmulShape[] {
    // The head's as launched: per vocabulary chunk when wte is over one binding (lm-head.ts).
    const others = [...(this.parts.head?.linears ?? []), ...this.bottleneckLinears];
    // f16 blocks launch matmul_f16, which has no variants to tune.
    if (this.half) return others.flatMap((l) => [l.forward, l.dInput, l.dWeight]);
    return planCases(this.blockPlan, null, others);
  }

  /** Channels per row of the stage's input activations: the bottleneck width after a boundary, else n_embd. */
  get inputWidth(): number {
    return this.parts.bottleneckIn?.inW ?? this.config.n_embd;
  }

  /** Channels per row of the stage's output activations: the bottleneck width before a boundary, else n_embd. */
  get outputWidth(): number {
    return this.parts.bottleneckOut?.outW ?? this.config.n_embd;
  }

  /** A non-first stage's input activations of slot `i` [B*T, inputWidth] (what setInput wrote; a codec may round
   *  trip it in place before forward). */
  inputOf(i: number): Tensor {
    if (this.parts.embedding) throw new Error('stage: the first stage reads tokens, not activations');
    return this.slot(i).input;
  }

  private slot(i: number): Slot {
    const s = this.slots[i];
    if (!s) throw new Error(`stage: slot ${i} out of range (0..${this.slots.length - 1})`);
    return s;
  }

  private checkIds(what: string, ids: Uint32Array): void {
    const N = this.dims.B * this.dims.T;
    if (ids.length !== N) throw new Error(`stage: ${what} has ${ids.length} ids, expected B*T = ${N}`);
    const V = this.config.vocab_size;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] >= V) throw new Error(`stage: ${what}[${i}] = ${ids[i]} is not a token id (vocab_size ${V})`);
    }
  }

  /** First stage: embed `tokens` [B*T] into slot `i`. */
  setTokens(i: number, tokens: Uint32Array): void {
    const { embedding } = this.parts;
    if (!embedding) throw new Error('stage: only the first stage reads tokens');
    this.checkIds('tokens', tokens);
    this.slot(i);
    embedding.setTokens(i, tokens);
  }

  /** Later stages: the previous stage's output activations [B*T*C] for slot `i`. */
  setInput(i: number, acts: Float32Array | Tensor): void {
    if (this.parts.embedding) throw new Error('stage: the first stage reads tokens, not activations');
    const s = this.slot(i);
    if (acts instanceof Float32Array) {
      if (acts.length !== s.input.size)
        throw new Error(`stage: input activations have ${acts.length} values, expected ${s.input.size} [${s.input.shape.join(', ')}]`);
      this.rt.write(s.input, acts);
    } else {
      expectShape('stage.setInput', 'activations', acts, s.input.shape);
      this.rt.copy(acts, s.input);
    }
  }

  /** Last stage: next-token targets [B*T] for slot `i`. */
  setTargets(i: number, targets: Uint32Array): void {
    const { head } = this.parts;
    if (!head) throw new Error('stage: only the last stage takes targets');
    this.checkIds('targets', targets);
    this.slot(i);
    head.setTargets(i, targets);
  }

  /** Runs the stage forward for slot `i`. Returns the output activations (non-last) or the mean loss tensor [1] (last). */
  forward(i: number): Tensor {
    const s = this.slot(i);
    const { embedding, head } = this.parts;
    const { bottleneckIn, bottleneckOut } = this.parts;
    embedding?.forward(i, s.input);
    if (bottleneckIn && s.expanded) bottleneckIn.forward(s.input, s.expanded);
    s.layers.forEach((a, j) => {
      const ib = this.innerBoundaries.findIndex((b) => b.j === j);
      if (ib >= 0) {
        const b = this.innerBoundaries[ib];
        b.down.forward(s.layers[j - 1].out, s.inner[ib].z);
        b.up.forward(s.inner[ib].z, s.inner[ib].x);
      }
      const half = this.half && { lin: this.half, j, gradScaleExp: 0 };
      blockForward(this.rt, this.blockPlan, this.layerWeights[j].params, a, s.blockIn[j], this.blockDims, half);
    });
    s.forwarded = true;
    if (bottleneckOut && s.narrowOut) {
      bottleneckOut.forward(s.output, s.narrowOut);
      return s.narrowOut;
    }
    return head ? head.forward(i, s.output) : s.output;
  }

  /** Last stage: the logits of slot `i` (after forward), [B*T, V]. */
  logits(i: number): Tensor {
    const { head } = this.parts;
    if (!head) throw new Error('stage: only the last stage has logits');
    this.slot(i);
    return head.logits(i);
  }

  /**
   * Backward for slot `i`, accumulating parameter gradients. The last stage starts from its loss, whose gradient is
   * `lossScale` per token (1/tokens in the global batch for a mean); other stages take `gradOut` [B*T*C]. With
   * precision 'f16' every stage also sizes the static scale of its output gradients from `lossScale` (half-linears.ts).
   * Returns the gradient of the stage input (a scratch tensor valid until the next backward) or null (first stage).
   */
  backward(i: number, opts: { lossScale?: number; gradOut?: Float32Array | Tensor }): Tensor | null {
    const rt = this.rt;
    const s = this.slot(i);
    if (!s.forwarded) throw new Error(`stage: backward on slot ${i} before its forward`);
    const { embedding, head, bottleneckIn, bottleneckOut } = this.parts;
    const dres = this.scratch.dres;
    const dNarrow = this.dNarrow;
    const lossScale = opts.lossScale ?? 1 / (this.dims.B * this.dims.T);
    const scaleExp = this.half ? gradScaleExp(lossScale) : 0;
    if (head) {
      head.backward(i, s.output, lossScale, this.scratch);
    } else {
      const g = opts.gradOut;
      if (!g) throw new Error('stage: backward of a non-last stage needs the gradient of its output');
      // The gradient of the output: of the narrow z before a bottleneck (then through the down-projection), else
      // of the last block's output directly.
      const into = bottleneckOut && dNarrow ? dNarrow : dres;
      if (g instanceof Float32Array) {
        if (g.length !== into.size)
          throw new Error(`stage: output gradient has ${g.length} values, expected ${into.size} [${into.shape.join(', ')}]`);
        rt.write(into, g);
      } else {
        expectShape('stage.backward', 'output gradient', g, into.shape);
        rt.copy(g, into);
      }
      if (bottleneckOut && dNarrow) bottleneckOut.backward(s.output, dNarrow, dres);
    }
    for (let j = s.layers.length - 1; j >= 0; j--) {
      const half = this.half && { lin: this.half, j, gradScaleExp: scaleExp };
      blockBackward(rt, this.blockPlan, this.layerWeights[j], s.layers[j], s.blockIn[j], this.scratch, this.blockDims, half);
      const ib = this.innerBoundaries.findIndex((b) => b.j === j);
      if (ib >= 0 && dNarrow) {
        const b = this.innerBoundaries[ib];
        b.up.backward(s.inner[ib].z, dres, dNarrow);
        b.down.backward(s.layers[j - 1].out, dNarrow, dres);
      }
    }
    s.forwarded = false;
    if (embedding) {
      embedding.backward(i, dres);
      return null;
    }
    if (bottleneckIn && s.expanded && dNarrow) {
      bottleneckIn.backward(s.input, dres, dNarrow);
      return dNarrow;
    }
    return dres;
  }

  zeroGrads(): void {
    this.params.zeroGrads();
  }

  /**
   * Sum of squared gradients over this stage's parameters (one flat-buffer reduction, fixed order). With
   * `excludeTiedWte` a first or a last stage leaves its copy of the tied wte out: the swarm's global-norm clipping
   * counts every parameter of the model once, the wte's from the two copies' exchanged sum (stage-runtime's reduce).
   */
  async gradSumSquares(opts: { excludeTiedWte?: boolean } = {}): Promise<number> {
    const ps = this.params;
    let start = 0;
    if (opts.excludeTiedWte && (this.parts.role === 'last' || this.parts.role === 'first')) {
      // wte is the first decayed tensor of a first or a last stage's store; skip it and its alignment padding.
      const w = ps.slotOf(WTE);
      start = w.offset + Math.ceil(w.size / this.rt.viewAlignment) * this.rt.viewAlignment;
    }
    const n = ps.total - start;
    if (n <= 0) return 0;
    const grads = start === 0 ? ps.grads : this.rt.view(ps.grads, start, [n], 'grads_tail');
    gradNorm(this.rt, { norm: this.gradNormValue, scale: this.gradScale, grads, partials: this.gradNormPartials }, { n, maxNorm: 0 });
    const norm = (await this.rt.read(this.gradNormValue))[0];
    return norm * norm;
  }

  /**
   * AdamW with bias correction for step `step` (>= 1). By default first clips by this stage's own global gradient
   * norm (`h.gradClip`; the single-peer engine, where the stage is the whole model). The swarm computes the norm over
   * all stages itself and passes the resulting clip factor as `scale`.
   */
  optimizerStep(step: number, h: OptimizerHyper, opts: { scale?: number } = {}): void {
    const rt = this.rt;
    const ps = this.params;
    if (opts.scale === undefined) {
      gradNorm(
        rt,
        { norm: this.gradNormValue, scale: this.gradScale, grads: ps.grads, partials: this.gradNormPartials },
        { n: ps.total, maxNorm: h.gradClip },
      );
    } else {
      if (!(opts.scale >= 0) || !Number.isFinite(opts.scale))
        throw new Error(`optimizerStep: clip scale ${opts.scale} is not a finite non-negative number`);
      rt.write(this.gradScale, Float32Array.of(opts.scale));
    }
    const common = { lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, step };
    const groups: [number, number, number][] = [
      [0, ps.decayEnd, h.weightDecay],
      [ps.decayEnd, ps.total, 0],
    ];
    for (const [start, end, wd] of groups) {
      if (end <= start) continue;
      const v = (t: Tensor, name: string) => rt.view(t, start, [end - start], name);
      adamwUpdate(
        rt,
        { params: v(ps.params, 'params'), grads: v(ps.grads, 'grads'), m: v(ps.m, 'm'), v: v(ps.v, 'v'), gradScale: this.gradScale },
        { n: end - start, weightDecay: wd, ...common },
      );
    }
  }
}
