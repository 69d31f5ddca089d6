// Matrix multiply with f16 operands, f32 accumulation and f32 output (shaders/matmul_f16.wgsl): half the memory and
// the wire for weights and activations where the device has 'shader-f16' (request it with
// acquireDevice(gpu, { f16: true }) / nodeRuntime({ f16: true }); DeviceHandle.hasF16 says whether it was granted).
//   out[M, N] (= or +=) alpha * (op(a)[M, K] @ op(b)[K, N]) (+ bias[N])     a, b, bias: packed f16; out: f32
// alpha (default 1) is a power of two, so the scaling is exact: an operand cast with an exact 2^k scale
// (src/gpu/ops/cast-f16.ts) against f16 underflow is undone by alpha = 2^-k at no cost in accuracy.
// f16 operands live in 'u32' tensors of f16Words(n) = ceil(n / 2) words, two halves per word, half 2i in the low 16
// bits (src/gpu/f16.ts: packF16 / unpackF16 on the host, uploadF16 here).
import code from '../../../shaders/matmul_f16.wgsl?raw';
import { f16Words, packF16 } from '../f16';
import { kernelVariants, packParams } from '../kernel';
import type { Runtime } from '../runtime';
import { expectNoAliasing, type Tensor } from '../tensor';
import { checkMatmulSizes, type MatmulCase } from './matmul';

/** The f32 matmul's case (src/gpu/ops/matmul.ts); a, b and bias hold packed f16. */
export interface MatmulF16Args extends Omit<MatmulCase, 'bias'> {
  /** f32 [M,N] */
  out: Tensor;
  a: Tensor;
  b: Tensor;
  /** packed f16 [N] */
  bias?: Tensor;
  /** Scales the product (not the bias or the prior out); a power of two in 2^-126..2^127, default 1. */
  alpha?: number;
}

/** Outputs per thread along each side, threads per workgroup along each side (shaders/matmul_f16.wgsl). */
const BLOCK = 4;
const THREADS = 8;

interface F16Case {
  transA: boolean;
  transB: boolean;
  bias: boolean;
  accumulate: boolean;
  vecA: boolean;
  vecB: boolean;
  scaled: boolean;
}

const kernels = kernelVariants<F16Case>({
  name: (v) =>
    `matmul_f16${v.transA ? ' tA' : ''}${v.transB ? ' tB' : ''}${v.bias ? ' bias' : ''}${v.accumulate ? ' acc' : ''}` +
    `${v.vecA ? ' vA' : ''}${v.vecB ? ' vB' : ''}${v.scaled ? ' scaled' : ''}`,
  source: code,
  entry: 'matmul_f16',
  defines: (v) => ({ TRANS_A: v.transA, TRANS_B: v.transB, HAS_BIAS: v.bias, ACCUM: v.accumulate, VEC_A: v.vecA, VEC_B: v.vecB, SCALED: v.scaled }),
});

/** Whether this runtime's device can run f16 kernels. */
export function hasShaderF16(rt: Runtime): boolean {
  return rt.handle.hasF16 && rt.device.features.has('shader-f16');
}

/** A 'u32' tensor holding `data` rounded to f16 and packed (`shape` counts halves; the tensor holds words). */
export function uploadF16(rt: Runtime, data: ArrayLike<number>, label: string): Tensor {
  return rt.upload(packF16(data), [f16Words(data.length)], label);
}

/** Whether x is 2^e for an integer e in -126..127 (a normal f32 power of two: multiplying by it is exact). */
function isPowerOfTwo(x: number): boolean {
  if (!(x > 0) || !Number.isFinite(x)) return false;
  const e = Math.log2(x);
  return Number.isInteger(e) && e >= -126 && e <= 127;
}

function expectPacked(what: string, t: Tensor, halves: number): void {
  if (t.dtype !== 'u32') throw new Error(`matmul_f16: ${what} ${t.label} is ${t.dtype}; f16 operands are packed in u32 tensors (uploadF16)`);
  const words = f16Words(halves);
  if (t.size < words)
    throw new Error(`matmul_f16: ${what} ${t.label} holds ${t.size} words (${2 * t.size} halves), needs ${words} words for ${halves} halves`);
}

function checkArgs(rt: Runtime, args: MatmulF16Args): void {
  if (!hasShaderF16(rt)) {
    const has = rt.handle.adapter.features.has('shader-f16');
    throw new Error(
      `matmul_f16: this device lacks the WebGPU feature 'shader-f16' (${
        has ? 'the adapter has it: request it with acquireDevice(gpu, { f16: true }) / nodeRuntime({ f16: true })' : 'the adapter does not offer it'
      }); use the f32 matmul (src/gpu/ops/matmul.ts)`,
    );
  }
  const { M, N, K } = args;
  checkMatmulSizes('matmul_f16', args);
  if (M * K > 0xffffffff || K * N > 0xffffffff || M * N > 0xffffffff) throw new Error(`matmul_f16: ${M}x${N}x${K} overflows u32 indexing`);
  expectPacked(args.transA ? 'a [K,M]' : 'a [M,K]', args.a, M * K);
  expectPacked(args.transB ? 'b [N,K]' : 'b [K,N]', args.b, K * N);
  if (args.bias) expectPacked('bias [N]', args.bias, N);
  if (args.alpha !== undefined && !isPowerOfTwo(args.alpha))
    throw new Error(`matmul_f16: alpha ${args.alpha} is not a power of two in 2^-126..2^127`);
  if (args.out.dtype !== 'f32') throw new Error(`matmul_f16: out ${args.out.label} is ${args.out.dtype}, expected f32`);
  if (args.out.size < M * N) throw new Error(`matmul_f16: out [M,N] ${args.out.label} holds ${args.out.size} elements, needs ${M * N}`);
  const reads: [string, Tensor][] = [
    ['a', args.a],
    ['b', args.b],
  ];
  if (args.bias) reads.push(['bias', args.bias]);
  expectNoAliasing('matmul_f16', reads, [['out', args.out]]);
}

/** out[M,N] (= or +=) op(a)[M,K] @ op(b)[K,N] (+ bias[N]): f16 operands (packed), exact f32 products, f32 sums. */
export function matmulF16(rt: Runtime, args: MatmulF16Args): void {
  checkArgs(rt, args);
  const { M, N, K } = args;
  if (M === 0 || N === 0) return;
  const transA = !!args.transA;
  const transB = !!args.transB;
  const alpha = args.alpha ?? 1;
  const v: F16Case = {
    transA,
    transB,
    bias: !!args.bias,
    accumulate: !!args.accumulate,
    vecA: transA ? M % 4 === 0 : K % 4 === 0,
    vecB: transB ? K % 4 === 0 : N % 4 === 0,
    scaled: alpha !== 1,
  };
  const buffers: Record<string, Tensor> = args.bias
    ? { a: args.a, b: args.b, bias: args.bias, out: args.out }
    : { a: args.a, b: args.b, out: args.out };
  const side = BLOCK * THREADS;
  rt.launch(
    kernels(v),
    buffers,
    [Math.ceil(N / side), Math.ceil(M / side)],
    packParams([
      ['u32', M],
      ['u32', N],
      ['u32', K],
      ['f32', alpha],
    ]),
  );
}
