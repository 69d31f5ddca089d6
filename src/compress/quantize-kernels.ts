// Launchers for shaders/quantize.wgsl: fp16 pack/unpack, blockwise int8/int4 scales/encode/decode/round trip, and the
// elementwise helpers of error feedback. Sizes are checked here (an error names the op); the codecs own the scratch.
import code from '../../shaders/quantize.wgsl?raw';
import { kernelVariants, packParams } from '../gpu/kernel';
import type { Runtime } from '../gpu/runtime';
import { expectNoAliasing, expectSize, type Tensor } from '../gpu/tensor';

export type Bits = 8 | 4;

interface Variant {
  bits: Bits;
  stochastic: boolean;
  acc: boolean;
}

const variants = (entry: string) =>
  kernelVariants<Variant>({
    name: (v) => `${entry}${v.bits === 4 ? '_i4' : ''}${v.stochastic ? '_sr' : ''}${v.acc ? '_acc' : ''}`,
    source: code,
    entry,
    defines: (v) => ({ BITS: v.bits, STOCHASTIC: v.stochastic, ACC: v.acc }),
  });
const PLAIN: Variant = { bits: 8, stochastic: false, acc: false };

const k = {
  fp16Encode: variants('fp16_encode'),
  fp16Decode: variants('fp16_decode'),
  fp16RoundTrip: variants('fp16_roundtrip'),
  blockScales: variants('block_scales'),
  blockEncode: variants('block_encode'),
  blockDecode: variants('block_decode'),
  blockRoundTrip: variants('block_roundtrip'),
  add: variants('ew_add'),
  sub: variants('ew_sub'),
  accumulate: variants('ew_accumulate'),
};

interface BlockParams {
  n: number;
  items: number;
  block?: number;
  codeOff?: number;
  keyHash?: number;
  bits?: Bits;
}

function params(p: BlockParams): ArrayBuffer {
  const qmax = p.bits === 4 ? 7 : 127;
  return packParams([
    ['u32', p.n],
    ['u32', p.items],
    ['u32', p.block ?? 0],
    ['u32', p.codeOff ?? 0],
    ['u32', p.keyHash ?? 0],
    ['f32', qmax],
    ['f32', Math.fround(1 / qmax)],
  ]);
}

export function codesPerWord(bits: Bits): number {
  return 32 / bits;
}

/** words [ceil(n/2)] = the first n values of src as IEEE halves (round to nearest even). */
export function fp16Encode(rt: Runtime, src: Tensor, words: Tensor, n: number): void {
  const items = Math.ceil(n / 2);
  expectSize('fp16_encode', 'src', src, n);
  expectSize('fp16_encode', 'words', words, items);
  expectNoAliasing('fp16_encode', [['src', src]], [['words', words]]);
  rt.launch(k.fp16Encode(PLAIN), { src_bits: src, dst_words: words }, rt.grid1d(items, 256), params({ n, items }));
}

/** out[0..n) = (acc ? out + : ) the halves in words. */
export function fp16Decode(rt: Runtime, words: Tensor, out: Tensor, n: number, acc: boolean): void {
  const items = Math.ceil(n / 2);
  expectSize('fp16_decode', 'words', words, items);
  expectSize('fp16_decode', 'out', out, n);
  expectNoAliasing('fp16_decode', [['words', words]], [['out', out]]);
  const bind: Record<string, Tensor> = { words, [acc ? 'out_acc' : 'out_bits']: out };
  rt.launch(k.fp16Decode({ ...PLAIN, acc }), bind, rt.grid1d(items, 256), params({ n, items }));
}

export function fp16RoundTrip(rt: Runtime, t: Tensor, n: number): void {
  expectSize('fp16_roundtrip', 't', t, n);
  rt.launch(k.fp16RoundTrip(PLAIN), { io_bits: t }, rt.grid1d(n, 256), params({ n, items: n }));
}

export interface BlockwiseConfig {
  bits: Bits;
  block: number;
  stochastic: boolean;
}

/** scales[0..nb) = one scale per block of the first n values of src (f32 bits; NaN for a non-finite block). */
export function blockScales(rt: Runtime, c: BlockwiseConfig, src: Tensor, scales: Tensor, n: number): void {
  const nb = Math.ceil(n / c.block);
  expectSize('block_scales', 'src', src, n);
  expectSize('block_scales', 'scales', scales, nb);
  expectNoAliasing('block_scales', [['src', src]], [['scales', scales]]);
  rt.launch(
    k.blockScales({ ...PLAIN, bits: c.bits }),
    { xin: src, scales_out: scales },
    rt.grid1d(nb, 256),
    params({ n, items: nb, block: c.block, bits: c.bits }),
  );
}

/** body = scales (already written by blockScales at 0..nb) + codes at nb. */
export function blockEncode(rt: Runtime, c: BlockwiseConfig, src: Tensor, body: Tensor, n: number, keyHash: number): void {
  const nb = Math.ceil(n / c.block);
  const items = Math.ceil(n / codesPerWord(c.bits));
  expectSize('block_encode', 'src', src, n);
  expectSize('block_encode', 'body', body, nb + items);
  expectNoAliasing('block_encode', [['src', src]], [['body', body]]);
  rt.launch(
    k.blockEncode({ bits: c.bits, stochastic: c.stochastic, acc: false }),
    { xin: src, payload: body },
    rt.grid1d(items, 256),
    params({ n, items, block: c.block, codeOff: nb, keyHash, bits: c.bits }),
  );
}

/** out[0..n) = (acc ? out + : ) the dequantised body. */
export function blockDecode(rt: Runtime, c: BlockwiseConfig, body: Tensor, out: Tensor, n: number, acc: boolean): void {
  const nb = Math.ceil(n / c.block);
  const items = Math.ceil(n / codesPerWord(c.bits));
  expectSize('block_decode', 'body', body, nb + items);
  expectSize('block_decode', 'out', out, n);
  expectNoAliasing('block_decode', [['body', body]], [['out', out]]);
  const bind: Record<string, Tensor> = { payload_in: body, [acc ? 'out_acc' : 'out_bits']: out };
  rt.launch(
    k.blockDecode({ bits: c.bits, stochastic: false, acc }),
    bind,
    rt.grid1d(items, 256),
    params({ n, items, block: c.block, codeOff: nb, bits: c.bits }),
  );
}

/** t[0..n) = dequantise(quantise(t)) with the scales blockScales wrote. */
export function blockRoundTrip(rt: Runtime, c: BlockwiseConfig, t: Tensor, scales: Tensor, n: number, keyHash: number): void {
  const nb = Math.ceil(n / c.block);
  expectSize('block_roundtrip', 't', t, n);
  expectSize('block_roundtrip', 'scales', scales, nb);
  expectNoAliasing('block_roundtrip', [['scales', scales]], [['t', t]]);
  rt.launch(
    k.blockRoundTrip({ bits: c.bits, stochastic: c.stochastic, acc: false }),
    { scales_in: scales, io: t },
    rt.grid1d(n, 256),
    params({ n, items: n, block: c.block, keyHash, bits: c.bits }),
  );
}

/** out = a + b over n. */
export function ewAdd(rt: Runtime, a: Tensor, b: Tensor, out: Tensor, n: number): void {
  for (const [w, t] of [
    ['a', a],
    ['b', b],
    ['out', out],
  ] as const)
    expectSize('ew_add', w, t, n);
  expectNoAliasing(
    'ew_add',
    [
      ['a', a],
      ['b', b],
    ],
    [['out', out]],
  );
  rt.launch(k.add(PLAIN), { ew_a: a, ew_b: b, ew_out: out }, rt.grid1d(n, 256), params({ n, items: n }));
}

/** out = a - b over n. */
export function ewSub(rt: Runtime, a: Tensor, b: Tensor, out: Tensor, n: number): void {
  for (const [w, t] of [
    ['a', a],
    ['b', b],
    ['out', out],
  ] as const)
    expectSize('ew_sub', w, t, n);
  expectNoAliasing(
    'ew_sub',
    [
      ['a', a],
      ['b', b],
    ],
    [['out', out]],
  );
  rt.launch(k.sub(PLAIN), { ew_a: a, ew_b: b, ew_out: out }, rt.grid1d(n, 256), params({ n, items: n }));
}

/** acc += a over n. */
export function ewAccumulate(rt: Runtime, a: Tensor, acc: Tensor, n: number): void {
  expectSize('ew_accumulate', 'a', a, n);
  expectSize('ew_accumulate', 'acc', acc, n);
  expectNoAliasing('ew_accumulate', [['a', a]], [['acc', acc]]);
  rt.launch(k.accumulate(PLAIN), { ew_a: a, ew_acc: acc }, rt.grid1d(n, 256), params({ n, items: n }));
}
