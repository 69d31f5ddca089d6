// Softmax cross-entropy over the vocabulary: forward (probs + per-row losses), a deterministic scaled reduction
// of the losses (mean: scale = 1/N), and the backward into the logits. Shapes: logits/probs/dlogits [N, V],
// targets [N] (u32 token ids), losses [N], loss [1]. See shaders/crossentropy.wgsl for the kernel layout.
import code from '../../../shaders/crossentropy.wgsl?raw';
import { kernelVariants, packParams, singleKernel } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor, expectNoAliasing } from '../tensor';

/** A quiet NaN's bits: kernels write it for an invalid target (the compiler cannot fold it away). */
export const NAN_BITS = 0x7fc00000;

// Threads per row are template knobs (//#define WG / WB in the shader): one kernel per thread count.
const forwardKernel = kernelVariants<number>({
  name: (wg) => `crossentropy_forward(wg=${wg})`,
  source: code,
  entry: 'crossentropy_forward',
  defines: (wg) => ({ WG: wg }),
});
const backwardKernel = kernelVariants<number>({
  name: (wb) => `crossentropy_backward(wb=${wb})`,
  source: code,
  entry: 'crossentropy_backward',
  defines: (wb) => ({ WB: wb }),
});
const reduceKernel = singleKernel('loss_reduce', code, 'loss_reduce');

/**
 * Threads per row for the forward (a power of two: the width of its reduction tree) and the backward. A function of
 * the adapter kind and V only, so on one kind of adapter the reduction order, and every output bit, is fixed by
 * the shape. Measured (N=768 V=65 / N=64 V=50257, forward ms): lavapipe wg 8: 3.4 / 118, wg 64: 8.2 / 131,
 * wg 256: 45 / 143; SwiftShader wg 4: 26 / 701, wg 16: 133 / 402, wg 256: 2395 / 946 (barriers are costly on CPU
 * adapters; about one SIMD width of threads per row wins). Real GPUs get wide workgroups.
 */
export function crossEntropyThreads(V: number, adapterKey: string): { forward: number; backward: number } {
  if (adapterKey === 'lavapipe') return { forward: V <= 1024 ? 8 : 16, backward: 8 };
  if (adapterKey === 'swiftshader') return { forward: V <= 256 ? 4 : 16, backward: V <= 256 ? 8 : 256 };
  return { forward: V <= 128 ? 32 : V <= 2048 ? 64 : 256, backward: V <= 64 ? 64 : 256 };
}

export function checkThreads(op: string, t: number, pow2: boolean): void {
  if (!Number.isInteger(t) || t < 1 || t > 256 || (pow2 && (t & (t - 1)) !== 0)) {
    throw new Error(`${op}: threads must be ${pow2 ? 'a power of two ' : 'an integer '}in 1..256, got ${t}`);
  }
}

export function checkDims(op: string, d: Record<string, number>): void {
  for (const [k, v] of Object.entries(d)) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${op}: ${k} must be a non-negative integer, got ${v}`);
  }
}

export function checkTargets(op: string, t: Tensor, N: number): void {
  if (t.dtype === 'f32') throw new Error(`${op}: targets ${t.label} must be u32 token ids, got f32`);
  expectSize(op, 'targets', t, N);
}

export function checkScale(op: string, scale: number): void {
  if (!Number.isFinite(scale)) throw new Error(`${op}: scale must be finite, got ${scale}`);
}

/**
 * probs[N,V] = softmax(logits[N,V]) (row-max subtracted), losses[N] = -log probs[n, targets[n]] computed as
 * logsumexp - logit (finite for logits up to the f32 range). targets: u32 [N]; a target >= V (or a negative i32)
 * reads/writes nothing out of bounds and gets a NaN loss (the host validates targets first).
 */
export function crossEntropyForward(
  rt: Runtime,
  a: { losses: Tensor; probs: Tensor; logits: Tensor; targets: Tensor },
  d: { N: number; V: number; /** threads per row (power of two <= 256); default crossEntropyThreads(V, adapter).forward */ threads?: number },
): void {
  const op = 'crossentropy_forward';
  const { N, V } = d;
  checkDims(op, { N, V });
  if (V < 1) throw new Error(`${op}: V must be at least 1, got ${V}`);
  if (N * V > 0xffffffff) throw new Error(`${op}: N*V = ${N * V} overflows u32 indexing`);
  expectSize(op, 'logits', a.logits, N * V);
  expectSize(op, 'probs', a.probs, N * V);
  expectSize(op, 'losses', a.losses, N);
  checkTargets(op, a.targets, N);
  expectNoAliasing(
    op,
    [
      ['logits', a.logits],
      ['targets', a.targets],
    ],
    [
      ['probs', a.probs],
      ['losses', a.losses],
    ],
  );
  const threads = d.threads ?? crossEntropyThreads(V, rt.handle.report.key).forward;
  checkThreads(op, threads, true);
  if (N === 0) return;
  rt.launch(
    forwardKernel(threads),
    { logits: a.logits, targets: a.targets, probs: a.probs, losses: a.losses },
    rt.grid1d(N, 1),
    packParams([
      ['u32', N],
      ['u32', V],
      ['f32', 0],
      ['u32', NAN_BITS],
    ]),
  );
}

/**
 * loss[0] = sum(losses[0..N)) * scale (scale = 1/N for a mean; the swarm passes 1/global_tokens). One workgroup:
 * 256 fixed strided serial partial sums, then a fixed tree. N = 0 writes 0.
 */
export function lossReduce(rt: Runtime, a: { loss: Tensor; losses: Tensor }, d: { N: number; scale: number }): void {
  const op = 'loss_reduce';
  const { N, scale } = d;
  checkDims(op, { N });
  checkScale(op, scale);
  expectSize(op, 'loss', a.loss, 1);
  expectSize(op, 'losses', a.losses, N);
  expectNoAliasing(op, [['losses', a.losses]], [['loss', a.loss]]);
  rt.launch(
    reduceKernel,
    { losses_in: a.losses, loss_out: a.loss },
    [1],
    packParams([
      ['u32', N],
      ['u32', 1],
      ['f32', scale],
      ['u32', NAN_BITS],
    ]),
  );
}

/**
 * dlogits[N,V] = (probs - onehot(targets)) * scale (OVERWRITE; scale = dloss/N_total, e.g. 1/N for a mean).
 * May alias nothing. A row whose target is out of range is written as NaN.
 */
export function crossEntropyBackward(
  rt: Runtime,
  a: { dlogits: Tensor; probs: Tensor; targets: Tensor },
  d: { N: number; V: number; scale: number; /** threads per row (<= 256); default crossEntropyThreads(V, adapter).backward */ threads?: number },
): void {
  const op = 'crossentropy_backward';
  const { N, V, scale } = d;
  checkDims(op, { N, V });
  checkScale(op, scale);
  if (V < 1) throw new Error(`${op}: V must be at least 1, got ${V}`);
  if (N * V > 0xffffffff) throw new Error(`${op}: N*V = ${N * V} overflows u32 indexing`);
  expectSize(op, 'dlogits', a.dlogits, N * V);
  expectSize(op, 'probs', a.probs, N * V);
  checkTargets(op, a.targets, N);
  expectNoAliasing(
    op,
    [
      ['probs', a.probs],
      ['targets', a.targets],
    ],
    [['dlogits', a.dlogits]],
  );
  const threads = d.threads ?? crossEntropyThreads(V, rt.handle.report.key).backward;
  checkThreads(op, threads, false);
  if (N === 0) return;
  rt.launch(
    backwardKernel(threads),
    { probs_in: a.probs, targets_in: a.targets, dlogits: a.dlogits },
    rt.grid1d(N, 1),
    packParams([
      ['u32', N],
      ['u32', V],
      ['f32', scale],
      ['u32', NAN_BITS],
    ]),
  );
}
