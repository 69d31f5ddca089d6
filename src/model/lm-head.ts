// The last stage's output part: ln_f, the lm_head tied to wte, softmax cross-entropy and the mean loss; and their
// backward from the loss to the gradient of the last block's output. Holds its parameter handles, the dlogits
// scratch and, per in-flight microbatch, the targets and what the backward needs.
// A wte over one storage binding (GPT-2 small's 50257 x 768 f32 is 154 MB; lavapipe and Chromium bind 128 MiB)
// takes the vocabulary-chunked path: wte is read in aligned row ranges, each chunk's logits [N, R] go through one
// shared scratch folded into per-row (max, sum, target logit) stats, and the backward recomputes each chunk's
// logits instead of storing probs: no [N, V] tensor exists (which also frees the last stage's largest buffers).
import { crossEntropyChunkBackward, crossEntropyChunkForward } from '../gpu/ops/crossentropy-chunked';
import { crossEntropyBackward, crossEntropyForward, lossReduce } from '../gpu/ops/crossentropy';
import { layernormBackward, layernormForward } from '../gpu/ops/layernorm';
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import { headMatmuls, launchMatmul, type LinearMatmuls } from './matmul-plan';
import type { HeadParams, ParamsAndGrads } from './param-handles';

interface HeadSlot {
  targets: Tensor;
  lnf: Tensor;
  lnfMean: Tensor;
  lnfRstd: Tensor;
  logits: Tensor;
  probs: Tensor;
  losses: Tensor;
  loss: Tensor;
}

/** The shapes of one microbatch's head tensors (stage-memory.ts sizes them); dlogits [N, V] is shared by the slots. */
export function headSlotShapes(d: { N: number; C: number; V: number }): Record<keyof HeadSlot, number[]> {
  const { N, C, V } = d;
  return { targets: [N], lnf: [N, C], lnfMean: [N], lnfRstd: [N], logits: [N, V], probs: [N, V], losses: [N], loss: [1] };
}

/** A vocabulary chunk of the chunked head: wte rows [v0, v0 + rows). */
export interface VocabRows {
  v0: number;
  rows: number;
}

/**
 * The vocabulary chunks of a head over N rows, or null for the whole-vocabulary path (the default whenever wte
 * [V, C] fits one binding and `vocabChunkRows` is not given). Every chunk but the last has the same rows; each
 * wte view [rows, C] and the logits scratch [N, rows] fit one binding, and each chunk starts at an element offset
 * v0 * C that is a multiple of `viewAlignment`.
 */
export function headVocabChunks(
  d: { N: number; C: number; V: number },
  limits: { maxBindingBytes: number; viewAlignment: number },
  vocabChunkRows?: number,
): VocabRows[] | null {
  const { N, C, V } = d;
  if (vocabChunkRows === undefined && V * C * 4 <= limits.maxBindingBytes) return null;
  const unit = lcm(C, limits.viewAlignment) / C; // rows per aligned step
  const maxRows = Math.floor(Math.min(limits.maxBindingBytes / 4 / C, limits.maxBindingBytes / 4 / Math.max(1, N)) / unit) * unit;
  let rows: number;
  if (vocabChunkRows !== undefined) {
    if (!Number.isInteger(vocabChunkRows) || vocabChunkRows < 1 || vocabChunkRows % unit !== 0) {
      throw new Error(`lm head: vocabChunkRows = ${vocabChunkRows} must be a positive multiple of ${unit} (aligned wte rows at C = ${C})`);
    }
    if (vocabChunkRows > maxRows) throw new Error(`lm head: vocabChunkRows = ${vocabChunkRows} is over ${maxRows}, the rows one binding holds`);
    rows = vocabChunkRows;
  } else {
    if (maxRows < unit) throw new Error(`lm head: a binding of ${limits.maxBindingBytes} B holds no aligned chunk of wte rows (N = ${N}, C = ${C})`);
    // The fewest chunks, evened out so the scratch is no larger than it must be.
    const n = Math.ceil(V / maxRows);
    rows = Math.ceil(Math.ceil(V / n) / unit) * unit;
  }
  const out: VocabRows[] = [];
  for (let v0 = 0; v0 < V; v0 += rows) out.push({ v0, rows: Math.min(rows, V - v0) });
  return out;
}

/** The chunked head's tensors: per slot (the [N, V] logits and probs replaced by per-row stats) and shared. */
export function headChunkedShapes(d: { N: number; C: number; V: number }, chunkRows: number): { slot: number[][]; shared: number[][] } {
  const { N, C } = d;
  return { slot: [[N], [N, C], [N], [N], [N, 3], [N], [1]], shared: [[N, chunkRows]] };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

interface ChunkedSlot {
  targets: Tensor;
  lnf: Tensor;
  lnfMean: Tensor;
  lnfRstd: Tensor;
  /** [N, 3]: per row max, sum of exp(x - max), the target's logit (after forward) */
  stats: Tensor;
  losses: Tensor;
  loss: Tensor;
}

interface Chunked {
  chunks: { r: VocabRows; mm: LinearMatmuls; mmAcc: LinearMatmuls }[];
  slots: ChunkedSlot[];
  /** One chunk's logits / dlogits [N, rows of the first chunk]. */
  scratch: Tensor;
}

export interface LmHeadOptions {
  /** Force the vocabulary-chunked path with chunks of this many rows (a multiple of the aligned row step); by
   *  default it is taken only when wte does not fit one storage binding. */
  vocabChunkRows?: number;
}

export class LmHead {
  private readonly slots: HeadSlot[];
  private readonly dlogits: Tensor | null;
  private readonly chunked: Chunked | null;

  constructor(
    private readonly rt: Runtime,
    readonly weights: ParamsAndGrads<HeadParams>,
    /** The lm_head's matmuls (also listed by Stage.matmulShapes). */
    readonly mm: LinearMatmuls,
    private readonly dims: { N: number; C: number; V: number },
    slotCount: number,
    opts: LmHeadOptions = {},
  ) {
    const { N, V } = dims;
    const chunks = headVocabChunks(dims, rt, opts.vocabChunkRows);
    if (chunks) {
      this.slots = [];
      this.dlogits = null;
      const sh = headChunkedShapes(dims, chunks[0].rows);
      const [targets, lnf, lnfMean, lnfRstd, stats, losses, loss] = sh.slot;
      const t = (shape: number[], name: string, dtype: 'f32' | 'u32' = 'f32') => rt.tensor(shape, name, dtype);
      this.chunked = {
        chunks: chunks.map((r) => {
          const mm = headMatmuls({ N, C: dims.C, V: r.rows });
          return { r, mm, mmAcc: { ...mm, dInput: { ...mm.dInput, accumulate: true } } };
        }),
        slots: Array.from({ length: slotCount }, (_, i) => ({
          targets: t(targets, `slot${i}.targets`, 'u32'),
          lnf: t(lnf, `slot${i}.lnf`),
          lnfMean: t(lnfMean, `slot${i}.lnf_mean`),
          lnfRstd: t(lnfRstd, `slot${i}.lnf_rstd`),
          stats: t(stats, `slot${i}.ce_stats`),
          losses: t(losses, `slot${i}.losses`),
          loss: t(loss, `slot${i}.loss`),
        })),
        scratch: t(sh.shared[0], 'logits_chunk'),
      };
      return;
    }
    this.chunked = null;
    const shapes = headSlotShapes(dims);
    this.slots = Array.from({ length: slotCount }, (_, i) => {
      const t = (k: keyof HeadSlot, name: string, dtype: 'f32' | 'u32' = 'f32') => rt.tensor(shapes[k], `slot${i}.${name}`, dtype);
      return {
        targets: t('targets', 'targets', 'u32'),
        lnf: t('lnf', 'lnf'),
        lnfMean: t('lnfMean', 'lnf_mean'),
        lnfRstd: t('lnfRstd', 'lnf_rstd'),
        logits: t('logits', 'logits'),
        probs: t('probs', 'probs'),
        losses: t('losses', 'losses'),
        loss: t('loss', 'loss'),
      };
    });
    this.dlogits = rt.tensor([N, V], 'dlogits');
  }

  private slot(i: number): HeadSlot {
    const s = this.slots[i];
    if (!s) throw new Error(`lm head: slot ${i} out of range (0..${this.slots.length - 1})`);
    return s;
  }

  private chunkedSlot(c: Chunked, i: number): ChunkedSlot {
    const s = c.slots[i];
    if (!s) throw new Error(`lm head: slot ${i} out of range (0..${c.slots.length - 1})`);
    return s;
  }

  /** The matmuls this head launches (the autotuner's list): per vocabulary chunk when chunked, else the head's. */
  get linears(): LinearMatmuls[] {
    return this.chunked ? this.chunked.chunks.flatMap((c) => [c.mm, c.mmAcc]) : [this.mm];
  }

  /** The vocabulary chunks this head runs in, or null on the whole-vocabulary path. */
  get vocabChunks(): readonly VocabRows[] | null {
    return this.chunked ? this.chunked.chunks.map((c) => c.r) : null;
  }

  /** Next-token targets [B*T] of slot `i` (ids already checked against the vocabulary). */
  setTargets(i: number, targets: Uint32Array): void {
    this.rt.write(this.chunked ? this.chunkedSlot(this.chunked, i).targets : this.slot(i).targets, targets);
  }

  /** From the last block's output `x`: logits, probabilities, per-token losses; returns the mean loss [1]. */
  forward(i: number, x: Tensor): Tensor {
    if (this.chunked) return this.forwardChunked(this.chunked, i, x);
    const rt = this.rt;
    const s = this.slot(i);
    const { N, C, V } = this.dims;
    const w = this.weights.params;
    layernormForward(rt, { out: s.lnf, mean: s.lnfMean, rstd: s.lnfRstd, inp: x, weight: w.lnfw, bias: w.lnfb }, { N, C });
    launchMatmul(rt, this.mm.forward, { out: s.logits, a: s.lnf, b: w.wte });
    crossEntropyForward(rt, { losses: s.losses, probs: s.probs, logits: s.logits, targets: s.targets }, { N, V });
    lossReduce(rt, { loss: s.loss, losses: s.losses }, { N, scale: 1 / N });
    return s.loss;
  }

  /** The per-token losses [B*T] of slot `i` (after forward). */
  losses(i: number): Tensor {
    return this.chunked ? this.chunkedSlot(this.chunked, i).losses : this.slot(i).losses;
  }

  /** The logits of slot `i` (after forward), [B*T, V]. The chunked path keeps none: it throws there. */
  logits(i: number): Tensor {
    if (this.chunked) {
      throw new Error(
        `lm head: the vocabulary-chunked head (wte [${this.dims.V}, ${this.dims.C}] over one ${this.rt.maxBindingBytes} B binding) keeps no [N, V] logits to read`,
      );
    }
    return this.slot(i).logits;
  }

  /**
   * Backward from the loss (gradient `scale` per token) to the gradient of the last block's output `x`, written
   * into `dres` (`dC` is scratch); accumulates the gradients of wte and ln_f.
   */
  backward(i: number, x: Tensor, scale: number, scratch: { dres: Tensor; dC: Tensor }): void {
    if (this.chunked) {
      this.backwardChunked(this.chunked, i, x, scale, scratch);
      return;
    }
    const rt = this.rt;
    const s = this.slot(i);
    const { N, C, V } = this.dims;
    const w = this.weights.params;
    const dw = this.weights.grads;
    const { dres, dC } = scratch;
    if (!this.dlogits) throw new Error('lm head: no dlogits on the whole-vocabulary path');
    crossEntropyBackward(rt, { dlogits: this.dlogits, probs: s.probs, targets: s.targets }, { N, V, scale });
    launchMatmul(rt, this.mm.dInput, { out: dC, a: this.dlogits, b: w.wte });
    launchMatmul(rt, this.mm.dWeight, { out: dw.wte, a: this.dlogits, b: s.lnf });
    rt.fill(dres, 0);
    layernormBackward(
      rt,
      { dinp: dres, dweight: dw.lnfw, dbias: dw.lnfb, dout: dC, inp: x, weight: w.lnfw, mean: s.lnfMean, rstd: s.lnfRstd },
      { N, C },
    );
  }

  /** wte (or dwte) rows of chunk `r` as a [rows, C] view, and the scratch as [N, rows]. */
  private views(c: Chunked, r: VocabRows, t: Tensor): { rows: Tensor; logits: Tensor } {
    const { N, C } = this.dims;
    return {
      rows: this.rt.view(t, r.v0 * C, [r.rows, C], `${t.label}[${r.v0}..${r.v0 + r.rows})`),
      logits: r.rows === c.scratch.shape[1] ? c.scratch : this.rt.view(c.scratch, 0, [N, r.rows], `${c.scratch.label}[:${r.rows}]`),
    };
  }

  private forwardChunked(c: Chunked, i: number, x: Tensor): Tensor {
    const rt = this.rt;
    const s = this.chunkedSlot(c, i);
    const { N, C, V } = this.dims;
    const w = this.weights.params;
    layernormForward(rt, { out: s.lnf, mean: s.lnfMean, rstd: s.lnfRstd, inp: x, weight: w.lnfw, bias: w.lnfb }, { N, C });
    // In vocabulary order: the stats' merge order (and so every bit of the loss) is fixed by the chunking.
    for (const { r, mm } of c.chunks) {
      const v = this.views(c, r, w.wte);
      launchMatmul(rt, mm.forward, { out: v.logits, a: s.lnf, b: v.rows });
      crossEntropyChunkForward(rt, { stats: s.stats, losses: s.losses, logits: v.logits, targets: s.targets }, { N, V, v0: r.v0, R: r.rows });
    }
    lossReduce(rt, { loss: s.loss, losses: s.losses }, { N, scale: 1 / N });
    return s.loss;
  }

  private backwardChunked(c: Chunked, i: number, x: Tensor, scale: number, scratch: { dres: Tensor; dC: Tensor }): void {
    const rt = this.rt;
    const s = this.chunkedSlot(c, i);
    const { N, C, V } = this.dims;
    const w = this.weights.params;
    const dw = this.weights.grads;
    const { dres, dC } = scratch;
    // Per chunk: recompute its logits, turn them into dlogits in place, dC (first chunk: =, then +=) and its dwte rows.
    c.chunks.forEach(({ r, mm, mmAcc }, j) => {
      const v = this.views(c, r, w.wte);
      const dwte = this.views(c, r, dw.wte).rows;
      launchMatmul(rt, mm.forward, { out: v.logits, a: s.lnf, b: v.rows });
      crossEntropyChunkBackward(rt, { dlogits: v.logits, stats: s.stats, targets: s.targets }, { N, V, v0: r.v0, R: r.rows, scale });
      launchMatmul(rt, (j === 0 ? mm : mmAcc).dInput, { out: dC, a: v.logits, b: v.rows });
      launchMatmul(rt, mm.dWeight, { out: dwte, a: v.logits, b: s.lnf });
    });
    rt.fill(dres, 0);
    layernormBackward(
      rt,
      { dinp: dres, dweight: dw.lnfw, dbias: dw.lnfb, dout: dC, inp: x, weight: w.lnfw, mean: s.lnfMean, rstd: s.lnfRstd },
      { N, C },
    );
  }
}
