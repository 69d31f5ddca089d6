// What a stage allocates on the GPU to train, in bytes, without a GPU: the parameter store (params, grads, AdamW m
// and v), every in-flight microbatch's activations and the shared backward scratch, from the same shape tables the
// Stage allocates from (block.ts, lm-head.ts). The coordinator partitions a model by it (layer-partition.ts) so no
// peer's stage exceeds its budget; stage-memory.test.ts holds it equal to what a real Stage allocates.
import { gradNormScratchSize } from '../gpu/ops/gradnorm';
import { LAYERNORM_MIN_SCRATCH, layernormScratchSize } from '../gpu/ops/layernorm';
import { blockScratchShapes, layerActShapes } from './block';
import type { BottleneckConfig } from './bottleneck-config';
import type { GPTConfig } from './config';
import { headChunkedShapes, headSlotShapes, headVocabChunks } from './lm-head';
import { stageParamSpecs, type MicroDims } from './stage';
import { embedsTokens, hasHead, stageRole, type StageRange } from './stage-role';

const WTE = 'transformer.wte.weight';

/** Bytes of one tensor as the Runtime allocates it (rounded up to 16 bytes, at least 16). */
export function tensorBytes(shape: readonly number[]): number {
  const n = shape.reduce((a, b) => a * b, 1);
  return Math.max(16, Math.ceil((n * 4) / 16) * 16);
}

export interface StageMemory {
  /** The flat parameter store: params + grads + m + v (each padded per tensor to the view alignment). */
  store: number;
  /** Activations kept per in-flight microbatch, times the slots. */
  activations: number;
  /** Backward scratch and small buffers shared by the slots. */
  scratch: number;
  total: number;
  /** The largest single tensor (a GPU storage binding holds at most maxStorageBufferBindingSize). */
  largestTensor: number;
  /**
   * The largest tensor a kernel binds whole: activations, scratch and every parameter but wte (the flat store's
   * buffers are bound in ranges by AdamW and the gradient norm, wte per vocabulary chunk by the encoder and, when it
   * is over the binding limit, by the head). A stage trains on an adapter only if this fits one binding.
   */
  largestBinding: number;
  /**
   * Allocated outside the Stage by what trains it: the layernorm backward's scratch (one per runtime, allocated at
   * the first backward) and, on a swarm peer, StageCompute's boundary buffers (src/model/stage-wire.ts: the decoded
   * input activations unless the stage embeds tokens, the decoded output gradient unless it ends in the loss; fp32
   * codecs; a compressing codec's own scratch is not counted).
   */
  opScratch: number;
  wire: number;
  /** What a swarm peer allocates to train the stage: total + opScratch + wire (the coordinator budgets by it). */
  peerTotal: number;
  /** What one process allocates to train it alone (the Trainer: no wire): total + opScratch. */
  processTotal: number;
}

export interface StageMemoryOptions {
  /** In-flight microbatches (pipeline depth; default 1). */
  slots?: number;
  bottleneck?: BottleneckConfig | null;
  /** Elements per view alignment of the flat store (the adapter's minStorageBufferOffsetAlignment / 4; default 64). */
  align?: number;
  /**
   * The adapter's storage binding limit (Runtime.maxBindingBytes): a head whose wte is over it runs
   * vocabulary-chunked (lm-head.ts) and allocates no [N, V] tensors. Default: none (the whole-vocabulary head, the
   * larger of the two, so a budget planned without knowing the peer's adapter is never under).
   */
  maxBindingBytes?: number;
}

/** The training memory of stage `range` of `config` at microbatch `dims` (what `new Stage(...)` allocates). */
export function stageMemory(config: GPTConfig, range: StageRange, dims: MicroDims, opts: StageMemoryOptions = {}): StageMemory {
  const align = opts.align ?? 64;
  const slots = opts.slots ?? 1;
  const bn = opts.bottleneck ?? null;
  const role = stageRole(config, range);
  const { B, T } = dims;
  const { n_embd: C, n_head: NH, vocab_size: V } = config;
  const N = B * T;
  let largest = 0;
  const sum = (shapes: readonly (readonly number[])[]): number =>
    shapes.reduce((a, s) => {
      const b = tensorBytes(s);
      largest = Math.max(largest, b);
      return a + b;
    }, 0);

  let total = 0;
  let largestParam = 0;
  for (const s of stageParamSpecs(config, range, bn)) {
    total += Math.ceil(s.shape.reduce((a, b) => a * b, 1) / align) * align;
    if (s.name !== WTE) largestParam = Math.max(largestParam, tensorBytes(s.shape));
  }
  total = Math.max(total, align);
  // Four buffers (params, grads, m, v), bound in ranges: not counted in `largest` (tensors bound whole).
  const storeTensor = tensorBytes([total]);
  const store = 4 * storeTensor;

  // Bottleneck halves: at the start (not on a stage that embeds tokens), at the end (not on one with the head), inside.
  const at = (l: number) => bn !== null && bn.after.includes(l);
  const k = bn?.width ?? C;
  const bIn = !embedsTokens(role) && at(range.layerStart);
  const bOut = !hasHead(role) && at(range.layerEnd);
  let inner = 0;
  for (let l = range.layerStart + 1; l < range.layerEnd; l++) if (at(l)) inner++;

  const perSlot: number[][] = [];
  const acts = layerActShapes({ B, T, C, NH });
  for (let l = range.layerStart; l < range.layerEnd; l++) perSlot.push(...Object.values(acts));
  perSlot.push([N, bIn ? k : C]);
  if (bIn) perSlot.push([N, C]);
  for (let i = 0; i < inner; i++) perSlot.push([N, k], [N, C]);
  if (bOut) perSlot.push([N, k]);
  if (embedsTokens(role)) perSlot.push([N], [3 * N + 1]); // token ids, the backward scatter's index
  const maxBindingBytes = opts.maxBindingBytes;
  const chunks = hasHead(role) && maxBindingBytes !== undefined ? headVocabChunks({ N, C, V }, { maxBindingBytes, viewAlignment: align }) : null;
  const chunked = chunks ? headChunkedShapes({ N, C, V }, chunks[0].rows) : null;
  if (hasHead(role)) perSlot.push(...(chunked ? chunked.slot : Object.values(headSlotShapes({ N, C, V }))));
  const activations = slots * sum(perSlot);

  const shared: number[][] = [...Object.values(blockScratchShapes({ B, T, C, NH }))];
  if (bn && (bIn || bOut || inner > 0)) shared.push([N, k]);
  if (hasHead(role)) shared.push(...(chunked ? chunked.shared : [[N, V]])); // dlogits, or the chunked head's logits chunk
  shared.push([gradNormScratchSize(total)], [1], [1]);
  const scratch = sum(shared);
  // The head binds wte whole (its logits matmuls) unless it runs vocabulary-chunked.
  const wteBound = hasHead(role) && !chunked ? tensorBytes([V, C]) : 0;
  const opScratch = sum([[Math.max(layernormScratchSize({ N, C }), LAYERNORM_MIN_SCRATCH)]]);
  const wireShapes: number[][] = [];
  if (!embedsTokens(role)) wireShapes.push([N, bIn ? k : C]);
  if (!hasHead(role)) wireShapes.push([N, bOut ? k : C]);
  const wire = sum(wireShapes);
  const stageTotal = store + activations + scratch;
  return {
    store,
    activations,
    scratch,
    total: stageTotal,
    opScratch,
    wire,
    peerTotal: stageTotal + opScratch + wire,
    processTotal: stageTotal + opScratch,
    largestTensor: Math.max(largest, storeTensor),
    largestBinding: Math.max(largest, largestParam, wteBound),
  };
}
