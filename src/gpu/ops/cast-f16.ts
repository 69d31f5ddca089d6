// Cast f32 -> packed f16 on the GPU (shaders/cast_f16.wgsl): the operands of the f16 matmul (src/gpu/ops/matmul-f16.ts)
// made from f32 tensors, bit for bit what packF16 (src/gpu/f16.ts) gives on the host, optionally scaled by 2^scaleExp.
//   out halves[i] = half(inp[i] * 2^scaleExp), i < n          inp: f32 [>= n]; out: u32 [>= ceil(n / 2)] (packed f16)
// Runs on any device (integer arithmetic only: no 'shader-f16' needed). n % 4 == 0 takes the vec4 variant.
import code from '../../../shaders/cast_f16.wgsl?raw';
import { f16Words } from '../f16';
import { kernelVariants, packParams } from '../kernel';
import type { Runtime } from '../runtime';
import { expectNoAliasing, expectSize, type Tensor } from '../tensor';
import { widthDefines, type Width } from '../wgsl';

/** The largest scale exponent: 2^64 keeps every f32 subnormal far below the smallest half (see the shader). */
export const MAX_CAST_SCALE_EXP = 64;

const kernels = kernelVariants<Width>({ name: (w) => `cast_f16${w === 4 ? '4' : ''}`, source: code, entry: 'cast_f16', defines: widthDefines });

/** out (packed f16, n halves) = inp[0..n) rounded to nearest even after scaling by 2^scaleExp (default 0). */
export function castF16(rt: Runtime, t: { out: Tensor; inp: Tensor }, d: { n: number; scaleExp?: number }): void {
  const { n } = d;
  const scaleExp = d.scaleExp ?? 0;
  if (!Number.isInteger(n) || n < 0) throw new Error(`cast_f16: n = ${n} is not a valid size`);
  if (!Number.isInteger(scaleExp) || scaleExp < 0 || scaleExp > MAX_CAST_SCALE_EXP) {
    throw new Error(`cast_f16: scaleExp ${scaleExp} is not an integer in 0..${MAX_CAST_SCALE_EXP}`);
  }
  if (t.inp.dtype !== 'f32') throw new Error(`cast_f16: inp ${t.inp.label} is ${t.inp.dtype}, expected f32`);
  if (t.out.dtype !== 'u32') throw new Error(`cast_f16: out ${t.out.label} is ${t.out.dtype}; packed f16 lives in u32 tensors`);
  expectSize('cast_f16', 'inp', t.inp, n);
  const words = f16Words(n);
  if (t.out.size < words) throw new Error(`cast_f16: out ${t.out.label} holds ${t.out.size} words, needs ${words} for ${n} halves`);
  expectNoAliasing('cast_f16', [['inp', t.inp]], [['out', t.out]]);
  if (n === 0) return;
  const w: Width = n % 4 === 0 ? 4 : 1;
  // Items: vec4 of inputs (two words each) or one word (two inputs) each.
  const items = w === 4 ? n / 4 : words;
  rt.launch(
    kernels(w),
    { inp: t.inp, out: t.out },
    rt.grid1d(items, 256),
    packParams([
      ['u32', n],
      ['u32', items],
      ['u32', scaleExp],
    ]),
  );
}
