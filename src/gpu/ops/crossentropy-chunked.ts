// Softmax cross-entropy over the vocabulary in chunks (the vocabulary-chunked LM head): the forward folds one
// chunk's logits [N, R] (vocabulary ids v0 .. v0 + R) into per-row stats [N, 3] (max, sum of exp, the target's
// logit) and writes the losses on the last chunk; the backward turns a chunk's recomputed logits into its dlogits in
// place. See shaders/crossentropy_chunked.wgsl for the kernel layout.
import code from '../../../shaders/crossentropy_chunked.wgsl?raw';
import { kernelVariants, packParams } from '../kernel';
import type { Runtime } from '../runtime';
import { expectNoAliasing, expectSize, type Tensor } from '../tensor';
import { checkDims, checkScale, checkTargets, checkThreads, crossEntropyThreads, NAN_BITS } from './crossentropy';

const forwardKernel = kernelVariants<number>({
  name: (wg) => `crossentropy_chunk_forward(wg=${wg})`,
  source: code,
  entry: 'crossentropy_chunk_forward',
  defines: (wg) => ({ WG: wg }),
});
const backwardKernel = kernelVariants<number>({
  name: (wb) => `crossentropy_chunk_backward(wb=${wb})`,
  source: code,
  entry: 'crossentropy_chunk_backward',
  defines: (wb) => ({ WB: wb }),
});

/** A chunk of the vocabulary: ids [v0, v0 + R) of V. */
export interface VocabChunk {
  N: number;
  V: number;
  v0: number;
  R: number;
}

/** The shader's Params: the chunk, the forward's first/last flags, the backward's scale. */
function chunkParams(d: VocabChunk, flags: number, scale: number): ArrayBuffer {
  return packParams([
    ['u32', d.N],
    ['u32', d.R],
    ['u32', d.V],
    ['u32', d.v0],
    ['u32', flags],
    ['f32', scale],
    ['u32', NAN_BITS],
  ]);
}

function checkChunk(op: string, d: VocabChunk): void {
  checkDims(op, { ...d });
  if (d.R < 1 || d.v0 + d.R > d.V) throw new Error(`${op}: chunk [${d.v0}, ${d.v0 + d.R}) is empty or outside V = ${d.V}`);
  if (d.N * d.R > 0xffffffff) throw new Error(`${op}: N*R = ${d.N * d.R} overflows u32 indexing`);
}

/**
 * Folds chunk `logits` [N, R] into `stats` [N, 3]: the first chunk (v0 = 0) sets them, later ones merge (launch
 * the chunks in vocabulary order). The last chunk (v0 + R = V) writes losses[N] = logsumexp - logit[target]
 * (NaN for a target >= V). Nothing is read or written out of bounds for any target.
 */
export function crossEntropyChunkForward(
  rt: Runtime,
  a: { stats: Tensor; losses: Tensor; logits: Tensor; targets: Tensor },
  d: VocabChunk & { /** threads per row (power of two <= 256); default crossEntropyThreads(R).forward */ threads?: number },
): void {
  const op = 'crossentropy_chunk_forward';
  const { N, V, v0, R } = d;
  checkChunk(op, { N, V, v0, R });
  expectSize(op, 'logits', a.logits, N * R);
  expectSize(op, 'stats', a.stats, 3 * N);
  expectSize(op, 'losses', a.losses, N);
  checkTargets(op, a.targets, N);
  expectNoAliasing(
    op,
    [
      ['logits', a.logits],
      ['targets', a.targets],
    ],
    [
      ['stats', a.stats],
      ['losses', a.losses],
    ],
  );
  const threads = d.threads ?? crossEntropyThreads(R, rt.handle.report.key).forward;
  checkThreads(op, threads, true);
  if (N === 0) return;
  const flags = (v0 === 0 ? 1 : 0) | (v0 + R === V ? 2 : 0);
  rt.launch(
    forwardKernel(threads),
    { ck_logits: a.logits, ck_targets: a.targets, ck_stats: a.stats, ck_losses: a.losses },
    rt.grid1d(N, 1),
    chunkParams(d, flags, 0),
  );
}

/**
 * IN PLACE: `dlogits` holds the chunk's logits [N, R] and becomes (softmax - onehot(targets)) * scale over those
 * columns, the softmax from the finished forward `stats` [N, 3]. A row whose target is >= V is written as NaN.
 */
export function crossEntropyChunkBackward(
  rt: Runtime,
  a: { dlogits: Tensor; stats: Tensor; targets: Tensor },
  d: VocabChunk & { scale: number; /** threads per row (<= 256); default crossEntropyThreads(R).backward */ threads?: number },
): void {
  const op = 'crossentropy_chunk_backward';
  const { N, V, v0, R, scale } = d;
  checkChunk(op, { N, V, v0, R });
  checkScale(op, scale);
  expectSize(op, 'dlogits', a.dlogits, N * R);
  expectSize(op, 'stats', a.stats, 3 * N);
  checkTargets(op, a.targets, N);
  expectNoAliasing(
    op,
    [
      ['stats', a.stats],
      ['targets', a.targets],
    ],
    [['dlogits', a.dlogits]],
  );
  const threads = d.threads ?? crossEntropyThreads(R, rt.handle.report.key).backward;
  checkThreads(op, threads, false);
  if (N === 0) return;
  rt.launch(
    backwardKernel(threads),
    { ck_stats_in: a.stats, ck_targets_in: a.targets, ck_dlogits: a.dlogits },
    rt.grid1d(N, 1),
    chunkParams(d, 0, scale),
  );
}
