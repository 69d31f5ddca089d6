// The first stage's input part: token ids in, token + position embedding out, and the scatter of the output
// gradient into wte and wpe. Holds its parameter handles and, per in-flight microbatch, the tokens and the
// host-built index the deterministic backward scatter uses.
import { encoderBackward, encoderForward, TokenIndex } from '../gpu/ops/encoder';
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import type { EmbeddingParams, ParamsAndGrads } from './param-handles';

interface EmbeddingSlot {
  tokens: Tensor;
  index: TokenIndex;
}

export class Embedding {
  private readonly slots: EmbeddingSlot[];

  constructor(
    private readonly rt: Runtime,
    readonly weights: ParamsAndGrads<EmbeddingParams>,
    private readonly dims: { B: number; T: number; C: number; V: number },
    slotCount: number,
  ) {
    const N = dims.B * dims.T;
    this.slots = Array.from({ length: slotCount }, (_, i) => ({
      tokens: rt.tensor([N], `slot${i}.tokens`, 'u32'),
      index: new TokenIndex(rt, N, dims.V),
    }));
  }

  private slot(i: number): EmbeddingSlot {
    const s = this.slots[i];
    if (!s) throw new Error(`embedding: slot ${i} out of range (0..${this.slots.length - 1})`);
    return s;
  }

  /** Tokens [B*T] of slot `i` (ids already checked against the vocabulary). */
  setTokens(i: number, tokens: Uint32Array): void {
    const s = this.slot(i);
    this.rt.write(s.tokens, tokens);
    s.index.update(tokens);
  }

  /** out[B*T, C] = wte[tokens] + wpe[t] for slot `i`. */
  forward(i: number, out: Tensor): void {
    const { B, T, C } = this.dims;
    const w = this.weights.params;
    encoderForward(this.rt, { out, tokens: this.slot(i).tokens, wte: w.wte, wpe: w.wpe }, { B, T, C });
  }

  /** Accumulates the gradient of the embedding output `dout` into dwte and dwpe. */
  backward(i: number, dout: Tensor): void {
    const dw = this.weights.grads;
    encoderBackward(this.rt, { dwte: dw.wte, dwpe: dw.wpe, dout, index: this.slot(i).index }, this.dims);
  }
}
