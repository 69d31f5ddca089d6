// A pipeline stage: GPT-2 blocks [layerStart, layerEnd). The first stage owns the embeddings and reads tokens; the
// last owns ln_f, the tied lm_head (its own copy of wte when it is not also the first stage) and the loss.
// The boundary is activations: forward takes [B,T,C] in and gives [B,T,C] out; backward takes the gradient of the
// output and gives the gradient of the input. A single-peer model is the stage [0, n_layer).
//
// Per layer (llm.c naming), forward:
//   ln1 = LN(x); qkv = ln1 @ Wattn + b; atty = attn(qkv); res2 = x + atty @ Wproj + b
//   ln2 = LN(res2); fch = ln2 @ Wfc + b; fchGelu = gelu(fch); out = res2 + fchGelu @ Wfcproj + b
// Backward walks it in reverse with one residual-gradient buffer `dres` that the LayerNorm backwards accumulate into.
import { attentionBackward, attentionForward } from '../gpu/ops/attention';
import { adamwUpdate } from '../gpu/ops/adamw';
import { crossEntropyBackward, crossEntropyForward, lossReduce } from '../gpu/ops/crossentropy';
import { encoderBackward, encoderForward, TokenIndex } from '../gpu/ops/encoder';
import { geluBackward, geluForward } from '../gpu/ops/gelu';
import { gradNorm, gradNormScratchSize } from '../gpu/ops/gradnorm';
import { layernormBackward, layernormForward } from '../gpu/ops/layernorm';
import { biasBackward, matmul } from '../gpu/ops/matmul';
import type { MatmulShape } from '../gpu/autotune';
import type { Runtime } from '../gpu/runtime';
import { expectShape, type Tensor } from '../gpu/tensor';
import { blockParamSpecs, validateConfig, type GPTConfig, type ParamSpec } from './config';
import { ParamStore } from './params';

export interface StageRange {
  layerStart: number;
  layerEnd: number;
}

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

const WTE = 'transformer.wte.weight';
const WPE = 'transformer.wpe.weight';

/** The parameters a stage holds, in checkpoint order. The last stage holds a tied copy of wte. */
export function stageParamSpecs(config: GPTConfig, r: StageRange): ParamSpec[] {
  validateRange(config, r);
  const C = config.n_embd;
  const first = r.layerStart === 0;
  const last = r.layerEnd === config.n_layer;
  const specs: ParamSpec[] = [];
  if (first || last) specs.push({ name: WTE, shape: [config.vocab_size, C], decay: true, layer: -1 });
  if (first) specs.push({ name: WPE, shape: [config.block_size, C], decay: true, layer: -1 });
  for (let l = r.layerStart; l < r.layerEnd; l++) specs.push(...blockParamSpecs(config, l));
  if (last) {
    specs.push(
      { name: 'transformer.ln_f.weight', shape: [C], decay: false, layer: config.n_layer },
      { name: 'transformer.ln_f.bias', shape: [C], decay: false, layer: config.n_layer },
    );
  }
  return specs;
}

function validateRange(config: GPTConfig, r: StageRange): void {
  if (!Number.isInteger(r.layerStart) || !Number.isInteger(r.layerEnd) || r.layerStart < 0 || r.layerEnd > config.n_layer || r.layerStart >= r.layerEnd) {
    throw new Error(`stage layers [${r.layerStart}, ${r.layerEnd}) are not a non-empty range inside [0, ${config.n_layer})`);
  }
}

interface LayerActs {
  ln1: Tensor; ln1Mean: Tensor; ln1Rstd: Tensor; qkv: Tensor; atty: Tensor; att: Tensor; res2: Tensor;
  ln2: Tensor; ln2Mean: Tensor; ln2Rstd: Tensor; fch: Tensor; fchGelu: Tensor; out: Tensor;
}

/** What one in-flight microbatch keeps for its backward pass. */
class Slot {
  /** First stage: the embedding output; other stages: the received activations. */
  input: Tensor;
  tokens?: Tensor;
  tokenIndex?: TokenIndex;
  targets?: Tensor;
  layers: LayerActs[] = [];
  lnf?: Tensor; lnfMean?: Tensor; lnfRstd?: Tensor; logits?: Tensor; probs?: Tensor; losses?: Tensor; loss?: Tensor;
  forwarded = false;

  constructor(rt: Runtime, s: Stage, i: number) {
    const { B, T } = s.dims;
    const { n_embd: C, n_head: NH, vocab_size: V } = s.config;
    const N = B * T;
    const t = (shape: number[], name: string, dtype: 'f32' | 'u32' = 'f32') => rt.tensor(shape, `slot${i}.${name}`, dtype);
    this.input = t([N, C], s.first ? 'encoded' : 'input');
    if (s.first) {
      this.tokens = t([N], 'tokens', 'u32');
      this.tokenIndex = new TokenIndex(rt, N, V);
    }
    for (let l = s.range.layerStart; l < s.range.layerEnd; l++) {
      this.layers.push({
        ln1: t([N, C], `h${l}.ln1`), ln1Mean: t([N], `h${l}.ln1_mean`), ln1Rstd: t([N], `h${l}.ln1_rstd`),
        qkv: t([N, 3 * C], `h${l}.qkv`), atty: t([N, C], `h${l}.atty`), att: t([B, NH, T, T], `h${l}.att`),
        res2: t([N, C], `h${l}.res2`), ln2: t([N, C], `h${l}.ln2`), ln2Mean: t([N], `h${l}.ln2_mean`),
        ln2Rstd: t([N], `h${l}.ln2_rstd`), fch: t([N, 4 * C], `h${l}.fch`), fchGelu: t([N, 4 * C], `h${l}.fch_gelu`),
        out: t([N, C], `h${l}.out`),
      });
    }
    if (s.last) {
      this.targets = t([N], 'targets', 'u32');
      this.lnf = t([N, C], 'lnf');
      this.lnfMean = t([N], 'lnf_mean');
      this.lnfRstd = t([N], 'lnf_rstd');
      this.logits = t([N, V], 'logits');
      this.probs = t([N, V], 'probs');
      this.losses = t([N], 'losses');
      this.loss = t([1], 'loss');
    }
  }

  get output(): Tensor {
    return this.layers[this.layers.length - 1].out;
  }
}

export interface StageOptions {
  /** In-flight microbatches whose activations are kept (pipeline depth); 1 for plain gradient accumulation. */
  slots?: number;
  /** Share another stage's parameters (e.g. a B=1 sampler beside the trainer). */
  params?: ParamStore;
}

export class Stage {
  readonly config: GPTConfig;
  readonly range: StageRange;
  readonly dims: MicroDims;
  readonly first: boolean;
  readonly last: boolean;
  readonly params: ParamStore;
  private readonly slots: Slot[];
  // Backward scratch, shared by all layers and slots.
  private readonly dres: Tensor;
  private readonly dC: Tensor;
  private readonly dqkv: Tensor;
  private readonly datt: Tensor;
  private readonly dfch: Tensor;
  private readonly dfchGelu: Tensor;
  private readonly dlogits?: Tensor;
  private readonly gradNormPartials: Tensor;
  /** [0] = global gradient norm of the last optimizer step, [0] of gradScale = the clip factor applied. */
  readonly gradNormValue: Tensor;
  private readonly gradScale: Tensor;

  constructor(private readonly rt: Runtime, config: GPTConfig, range: StageRange, dims: MicroDims, opts: StageOptions = {}) {
    this.config = validateConfig(config);
    validateRange(config, range);
    if (!Number.isInteger(dims.B) || dims.B < 1) throw new Error(`stage: microbatch size B must be a positive integer, got ${dims.B}`);
    if (!Number.isInteger(dims.T) || dims.T < 1 || dims.T > config.block_size) {
      throw new Error(`stage: sequence length T=${dims.T} must be in 1..block_size (${config.block_size})`);
    }
    this.range = range;
    this.dims = dims;
    this.first = range.layerStart === 0;
    this.last = range.layerEnd === config.n_layer;
    const specs = stageParamSpecs(config, range);
    if (opts.params) {
      for (const s of specs) if (!opts.params.has(s.name)) throw new Error(`stage: shared parameters lack ${s.name}`);
      this.params = opts.params;
    } else {
      this.params = new ParamStore(rt, specs, `stage${range.layerStart}-${range.layerEnd}`);
    }
    const nSlots = opts.slots ?? 1;
    this.slots = Array.from({ length: nSlots }, (_, i) => new Slot(rt, this, i));
    const { B, T } = dims;
    const { n_embd: C, n_head: NH, vocab_size: V } = config;
    const N = B * T;
    this.dres = rt.tensor([N, C], 'dres');
    this.dC = rt.tensor([N, C], 'dC');
    this.dqkv = rt.tensor([N, 3 * C], 'dqkv');
    this.datt = rt.tensor([B, NH, T, T], 'datt');
    this.dfch = rt.tensor([N, 4 * C], 'dfch');
    this.dfchGelu = rt.tensor([N, 4 * C], 'dfch_gelu');
    if (this.last) this.dlogits = rt.tensor([N, V], 'dlogits');
    this.gradNormPartials = rt.tensor([gradNormScratchSize(this.params.total)], 'gradnorm_partials');
    this.gradNormValue = rt.tensor([1], 'grad_norm');
    this.gradScale = rt.tensor([1], 'grad_scale');
  }

  get slotCount(): number {
    return this.slots.length;
  }

  /** Every matmul shape this stage launches (for the autotuner). */
  matmulShapes(): MatmulShape[] {
    const N = this.dims.B * this.dims.T;
    const C = this.config.n_embd;
    const V = this.config.vocab_size;
    const shapes: MatmulShape[] = [];
    for (const [IN, OUT] of [[C, 3 * C], [C, C], [C, 4 * C], [4 * C, C]]) {
      shapes.push({ M: N, K: IN, N: OUT, bias: true, accumulate: OUT === C });
      shapes.push({ M: N, K: OUT, N: IN, transB: true });
      shapes.push({ M: IN, K: N, N: OUT, transA: true, accumulate: true });
    }
    if (this.last) {
      shapes.push({ M: N, K: C, N: V, transB: true }, { M: N, K: V, N: C }, { M: V, K: N, N: C, transA: true, accumulate: true });
    }
    return shapes;
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
    if (!this.first) throw new Error('stage: only the first stage reads tokens');
    this.checkIds('tokens', tokens);
    const s = this.slot(i);
    this.rt.write(s.tokens!, tokens);
    s.tokenIndex!.update(tokens);
  }

  /** Later stages: the previous stage's output activations [B*T*C] for slot `i`. */
  setInput(i: number, acts: Float32Array | Tensor): void {
    if (this.first) throw new Error('stage: the first stage reads tokens, not activations');
    const s = this.slot(i);
    if (acts instanceof Float32Array) {
      if (acts.length !== s.input.size) throw new Error(`stage: input activations have ${acts.length} values, expected ${s.input.size} [${s.input.shape.join(', ')}]`);
      this.rt.write(s.input, acts);
    } else {
      expectShape('stage.setInput', 'activations', acts, s.input.shape);
      this.rt.copy(acts, s.input);
    }
  }

  /** Last stage: next-token targets [B*T] for slot `i`. */
  setTargets(i: number, targets: Uint32Array): void {
    if (!this.last) throw new Error('stage: only the last stage takes targets');
    this.checkIds('targets', targets);
    this.rt.write(this.slot(i).targets!, targets);
  }

  /** Runs the stage forward for slot `i`. Returns the output activations (non-last) or the mean loss tensor [1] (last). */
  forward(i: number): Tensor {
    const rt = this.rt;
    const s = this.slot(i);
    const { B, T } = this.dims;
    const { n_embd: C, n_head: NH, vocab_size: V } = this.config;
    const N = B * T;
    const P = (n: string) => this.params.p(n);
    if (this.first) encoderForward(rt, { out: s.input, tokens: s.tokens!, wte: P(WTE), wpe: P(WPE) }, { B, T, C });
    let x = s.input;
    for (let j = 0; j < s.layers.length; j++) {
      const a = s.layers[j];
      const h = `transformer.h.${this.range.layerStart + j}.`;
      layernormForward(rt, { out: a.ln1, mean: a.ln1Mean, rstd: a.ln1Rstd, inp: x, weight: P(h + 'ln_1.weight'), bias: P(h + 'ln_1.bias') }, { N, C });
      matmul(rt, { out: a.qkv, a: a.ln1, b: P(h + 'attn.c_attn.weight'), bias: P(h + 'attn.c_attn.bias'), M: N, K: C, N: 3 * C });
      attentionForward(rt, { out: a.atty, att: a.att, qkv: a.qkv }, { B, T, C, NH });
      rt.copy(x, a.res2);
      matmul(rt, { out: a.res2, a: a.atty, b: P(h + 'attn.c_proj.weight'), bias: P(h + 'attn.c_proj.bias'), M: N, K: C, N: C, accumulate: true });
      layernormForward(rt, { out: a.ln2, mean: a.ln2Mean, rstd: a.ln2Rstd, inp: a.res2, weight: P(h + 'ln_2.weight'), bias: P(h + 'ln_2.bias') }, { N, C });
      matmul(rt, { out: a.fch, a: a.ln2, b: P(h + 'mlp.c_fc.weight'), bias: P(h + 'mlp.c_fc.bias'), M: N, K: C, N: 4 * C });
      geluForward(rt, a.fchGelu, a.fch);
      rt.copy(a.res2, a.out);
      matmul(rt, { out: a.out, a: a.fchGelu, b: P(h + 'mlp.c_proj.weight'), bias: P(h + 'mlp.c_proj.bias'), M: N, K: 4 * C, N: C, accumulate: true });
      x = a.out;
    }
    s.forwarded = true;
    if (!this.last) return x;
    layernormForward(rt, { out: s.lnf!, mean: s.lnfMean!, rstd: s.lnfRstd!, inp: x, weight: P('transformer.ln_f.weight'), bias: P('transformer.ln_f.bias') }, { N, C });
    matmul(rt, { out: s.logits!, a: s.lnf!, b: P(WTE), M: N, K: C, N: V, transB: true });
    crossEntropyForward(rt, { losses: s.losses!, probs: s.probs!, logits: s.logits! , targets: s.targets! }, { N, V });
    lossReduce(rt, { loss: s.loss!, losses: s.losses! }, { N, scale: 1 / N });
    return s.loss!;
  }

  /** Last stage: the logits of slot `i` (after forward), [B*T, V]. */
  logits(i: number): Tensor {
    if (!this.last) throw new Error('stage: only the last stage has logits');
    return this.slot(i).logits!;
  }

  /**
   * Backward for slot `i`, accumulating parameter gradients. The last stage starts from its loss, whose gradient is
   * `lossScale` per token (1/tokens in the global batch for a mean); other stages take `gradOut` [B*T*C].
   * Returns the gradient of the stage input (a scratch tensor valid until the next backward) or null (first stage).
   */
  backward(i: number, opts: { lossScale?: number; gradOut?: Float32Array | Tensor }): Tensor | null {
    const rt = this.rt;
    const s = this.slot(i);
    if (!s.forwarded) throw new Error(`stage: backward on slot ${i} before its forward`);
    const { B, T } = this.dims;
    const { n_embd: C, n_head: NH, vocab_size: V } = this.config;
    const N = B * T;
    const P = (n: string) => this.params.p(n);
    const G = (n: string) => this.params.g(n);
    const dres = this.dres;
    const dC = this.dC;
    if (this.last) {
      const scale = opts.lossScale ?? 1 / N;
      crossEntropyBackward(rt, { dlogits: this.dlogits!, probs: s.probs!, targets: s.targets! }, { N, V, scale });
      matmul(rt, { out: dC, a: this.dlogits!, b: P(WTE), M: N, K: V, N: C });
      matmul(rt, { out: G(WTE), a: this.dlogits!, b: s.lnf!, M: V, K: N, N: C, transA: true, accumulate: true });
      rt.fill(dres, 0);
      layernormBackward(rt, { dinp: dres, dweight: G('transformer.ln_f.weight'), dbias: G('transformer.ln_f.bias'), dout: dC, inp: s.output, weight: P('transformer.ln_f.weight'), mean: s.lnfMean!, rstd: s.lnfRstd! }, { N, C });
    } else {
      const g = opts.gradOut;
      if (!g) throw new Error('stage: backward of a non-last stage needs the gradient of its output');
      if (g instanceof Float32Array) {
        if (g.length !== dres.size) throw new Error(`stage: output gradient has ${g.length} values, expected ${dres.size} [${dres.shape.join(', ')}]`);
        rt.write(dres, g);
      } else {
        expectShape('stage.backward', 'output gradient', g, dres.shape);
        rt.copy(g, dres);
      }
    }
    for (let j = s.layers.length - 1; j >= 0; j--) {
      const a = s.layers[j];
      const x = j === 0 ? s.input : s.layers[j - 1].out;
      const h = `transformer.h.${this.range.layerStart + j}.`;
      // MLP
      matmul(rt, { out: this.dfchGelu, a: dres, b: P(h + 'mlp.c_proj.weight'), M: N, K: C, N: 4 * C, transB: true });
      matmul(rt, { out: G(h + 'mlp.c_proj.weight'), a: a.fchGelu, b: dres, M: 4 * C, K: N, N: C, transA: true, accumulate: true });
      biasBackward(rt, G(h + 'mlp.c_proj.bias'), dres, N, C);
      geluBackward(rt, this.dfch, a.fch, this.dfchGelu);
      matmul(rt, { out: dC, a: this.dfch, b: P(h + 'mlp.c_fc.weight'), M: N, K: 4 * C, N: C, transB: true });
      matmul(rt, { out: G(h + 'mlp.c_fc.weight'), a: a.ln2, b: this.dfch, M: C, K: N, N: 4 * C, transA: true, accumulate: true });
      biasBackward(rt, G(h + 'mlp.c_fc.bias'), this.dfch, N, 4 * C);
      layernormBackward(rt, { dinp: dres, dweight: G(h + 'ln_2.weight'), dbias: G(h + 'ln_2.bias'), dout: dC, inp: a.res2, weight: P(h + 'ln_2.weight'), mean: a.ln2Mean, rstd: a.ln2Rstd }, { N, C });
      // attention
      matmul(rt, { out: dC, a: dres, b: P(h + 'attn.c_proj.weight'), M: N, K: C, N: C, transB: true });
      matmul(rt, { out: G(h + 'attn.c_proj.weight'), a: a.atty, b: dres, M: C, K: N, N: C, transA: true, accumulate: true });
      biasBackward(rt, G(h + 'attn.c_proj.bias'), dres, N, C);
      attentionBackward(rt, { dqkv: this.dqkv, datt: this.datt, dout: dC, qkv: a.qkv, att: a.att }, { B, T, C, NH });
      matmul(rt, { out: dC, a: this.dqkv, b: P(h + 'attn.c_attn.weight'), M: N, K: 3 * C, N: C, transB: true });
      matmul(rt, { out: G(h + 'attn.c_attn.weight'), a: a.ln1, b: this.dqkv, M: C, K: N, N: 3 * C, transA: true, accumulate: true });
      biasBackward(rt, G(h + 'attn.c_attn.bias'), this.dqkv, N, 3 * C);
      layernormBackward(rt, { dinp: dres, dweight: G(h + 'ln_1.weight'), dbias: G(h + 'ln_1.bias'), dout: dC, inp: x, weight: P(h + 'ln_1.weight'), mean: a.ln1Mean, rstd: a.ln1Rstd }, { N, C });
    }
    s.forwarded = false;
    if (this.first) {
      encoderBackward(rt, { dwte: G(WTE), dwpe: G(WPE), dout: dres, index: s.tokenIndex! }, { B, T, C, V });
      return null;
    }
    return dres;
  }

  zeroGrads(): void {
    this.params.zeroGrads();
  }

  /**
   * Sum of squared gradients over this stage's parameters (one flat-buffer reduction, fixed order). With
   * `excludeTiedWte` the tied wte copy of a last stage is left out, so that summing over all stages counts every
   * parameter of the model once (the swarm's global-norm clipping).
   */
  async gradSumSquares(opts: { excludeTiedWte?: boolean } = {}): Promise<number> {
    const ps = this.params;
    let start = 0;
    if (opts.excludeTiedWte && this.last && !this.first) {
      const w = ps.byName.get(WTE)!;
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
      gradNorm(rt, { norm: this.gradNormValue, scale: this.gradScale, grads: ps.grads, partials: this.gradNormPartials }, { n: ps.total, maxNorm: h.gradClip });
    } else {
      if (!(opts.scale >= 0) || !Number.isFinite(opts.scale)) throw new Error(`optimizerStep: clip scale ${opts.scale} is not a finite non-negative number`);
      rt.write(this.gradScale, Float32Array.of(opts.scale));
    }
    const common = { lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, step };
    const groups: [number, number, number][] = [[0, ps.decayEnd, h.weightDecay], [ps.decayEnd, ps.total, 0]];
    for (const [start, end, wd] of groups) {
      if (end <= start) continue;
      const v = (t: Tensor, name: string) => rt.view(t, start, [end - start], name);
      adamwUpdate(rt, { params: v(ps.params, 'params'), grads: v(ps.grads, 'grads'), m: v(ps.m, 'm'), v: v(ps.v, 'v'), gradScale: this.gradScale }, { n: end - start, weightDecay: wd, ...common });
    }
  }
}
