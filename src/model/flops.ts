// FLOPs of one pipeline stage's microbatch, the unit the contribution ledger credits (docs/trust.md "Ledger").
// The standard accounting (Kaplan et al. 2020, PaLM appendix B): a matmul with W weights over N tokens is 2·W·N
// FLOPs forward; attention adds 2·T·C per token and layer for Q·Kᵀ and as much for att·V (counted over the full
// T x T, as the kernels compute it before the causal mask); the backward pass costs twice the forward. Biases,
// LayerNorm, GeLU, softmax and embedding lookups are left out (lower order, and no matmul).
//
// Per block: c_attn C·3C + attn.c_proj C·C + mlp.c_fc C·4C + mlp.c_proj 4C·C = 12·C² weights. The stage that holds
// the head adds the tied lm_head (C·V weights). So, for a stage of L blocks, B sequences of T tokens (N = B·T):
//   forward  = 2·N·(12·C²·L + [head] C·V) + 4·B·T²·C·L
//   backward = 2·forward
// Integers, as bigint: a long run's totals pass 2^53.
import type { GPTConfig } from './config';
import { hasHead, stageRole, type StageRange } from './stage-role';

export interface MicrobatchFlops {
  forward: bigint;
  backward: bigint;
}

/** FLOPs of one microbatch (B sequences of T tokens) through stage `range` of `model`, forward and backward. */
export function stageMicrobatchFlops(model: GPTConfig, range: StageRange, B: number, T: number): MicrobatchFlops {
  const role = stageRole(model, range);
  for (const [k, v] of [
    ['B', B],
    ['T', T],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new Error(`stageMicrobatchFlops: ${k} must be a positive integer, got ${v}`);
  const L = BigInt(range.layerEnd - range.layerStart);
  const C = BigInt(model.n_embd);
  const V = BigInt(model.vocab_size);
  const b = BigInt(B);
  const t = BigInt(T);
  const weights = 12n * C * C * L + (hasHead(role) ? C * V : 0n);
  const forward = 2n * b * t * weights + 4n * b * t * t * C * L;
  return { forward, backward: 2n * forward };
}
