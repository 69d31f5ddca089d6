// int8 / int4 blockwise absmax: one f32 scale per `block` values, codes in [-127, 127] / [-7, 7] (int4 packed two per
// byte). Rounding to nearest (half to even) or stochastic from the rounding key. The quantiser is in
// shaders/quantize.wgsl; the encoder refuses a non-finite input (its block's scale comes out NaN: a NaN must not be
// quantised silently), the round trip in place turns such a block into NaN (there is no readback to refuse on).
import { CodecBase } from './codec-base';
import type { Runtime } from '../gpu/runtime';
import { type Tensor } from '../gpu/tensor';
import { CodecError } from './codec-error';
import { blockDecode, blockEncode, blockRoundTrip, blockScales, type BlockwiseConfig } from './quantize-kernels';
import { checkKey, keyHash } from './rounding-key';
import type { CodecSpec } from './spec';
import type { RoundingKey } from './types';
import { checkPayload } from './validate';
import { bodyLayout, describeCodec } from './wire-format';

export type BlockwiseSpec = Extract<CodecSpec, { kind: 'int8' | 'int4' }>;

export class BlockwiseCodec extends CodecBase<BlockwiseSpec> {
  private readonly config: BlockwiseConfig;

  constructor(rt: Runtime, spec: BlockwiseSpec) {
    super(rt, spec);
    this.config = { bits: spec.kind === 'int8' ? 8 : 4, block: spec.block, stochastic: spec.rounding === 'stochastic' };
  }

  async encode(rt: Runtime, src: Tensor, n: number, key: RoundingKey): Promise<Uint8Array> {
    this.prepare(rt, src, n, 'src');
    checkKey(key, this.name);
    const layout = bodyLayout(this.spec, n);
    const body = this.scratch.get('encoded', layout.words);
    blockScales(rt, this.config, src, body, n);
    blockEncode(rt, this.config, src, body, n, keyHash(key));
    const words = await rt.readU32(body, layout.words);
    for (let b = 0; b < layout.blocks; b++) {
      if ((words[b] & 0x7f800000) === 0x7f800000) {
        const end = Math.min(n, (b + 1) * this.spec.block) - 1;
        throw new CodecError(
          this.spec.kind,
          `input holds a non-finite value in block ${b} (elements ${b * this.spec.block}..${end}); refusing to encode it`,
          describeCodec(this.spec),
        );
      }
    }
    return this.payloadOf(n, words, layout.words);
  }

  roundTrip(rt: Runtime, t: Tensor, n: number, key: RoundingKey): void {
    this.prepare(rt, t, n, 't');
    checkKey(key, this.name);
    const scales = this.scratch.get('scales', bodyLayout(this.spec, n).blocks);
    blockScales(rt, this.config, t, scales, n);
    blockRoundTrip(rt, this.config, t, scales, n, keyHash(key));
  }

  protected decodeInto(rt: Runtime, payload: Uint8Array, out: Tensor, n: number, acc: boolean): void {
    this.prepare(rt, out, n, acc ? 'acc' : 'out');
    const { body } = checkPayload(this.spec, payload, n);
    const words = this.scratch.get('received', body.length);
    rt.write(words, body);
    blockDecode(rt, this.config, words, out, n, acc);
  }
}
