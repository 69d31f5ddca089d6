// The last stage's output part: ln_f, the lm_head tied to wte, softmax cross-entropy and the mean loss; and their
// backward from the loss to the gradient of the last block's output. Holds its parameter handles, the dlogits
// scratch and, per in-flight microbatch, the targets and what the backward needs.
import { crossEntropyBackward, crossEntropyForward, lossReduce } from '../gpu/ops/crossentropy';
import { layernormBackward, layernormForward } from '../gpu/ops/layernorm';
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import { launchMatmul, type LinearMatmuls } from './matmul-plan';
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

export class LmHead {
  private readonly slots: HeadSlot[];
  private readonly dlogits: Tensor;

  constructor(
    private readonly rt: Runtime,
    readonly weights: ParamsAndGrads<HeadParams>,
    /** The lm_head's matmuls (also listed by Stage.matmulShapes). */
    readonly mm: LinearMatmuls,
    private readonly dims: { N: number; C: number; V: number },
    slotCount: number,
  ) {
    const { N, V } = dims;
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

  /** Next-token targets [B*T] of slot `i` (ids already checked against the vocabulary). */
  setTargets(i: number, targets: Uint32Array): void {
    this.rt.write(this.slot(i).targets, targets);
  }

  /** From the last block's output `x`: logits, probabilities, per-token losses; returns the mean loss [1]. */
  forward(i: number, x: Tensor): Tensor {
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

  /** The logits of slot `i` (after forward), [B*T, V]. */
  logits(i: number): Tensor {
    return this.slot(i).logits;
  }

  /**
   * Backward from the loss (gradient `scale` per token) to the gradient of the last block's output `x`, written
   * into `dres` (`dC` is scratch); accumulates the gradients of wte and ln_f.
   */
  backward(i: number, x: Tensor, scale: number, scratch: { dres: Tensor; dC: Tensor }): void {
    const rt = this.rt;
    const s = this.slot(i);
    const { N, C, V } = this.dims;
    const w = this.weights.params;
    const dw = this.weights.grads;
    const { dres, dC } = scratch;
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
}
