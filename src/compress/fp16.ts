// fp16: IEEE binary16, round to nearest even, overflow to inf and NaN kept, like a real cast (shaders/quantize.wgsl
// converts on the bits, so every adapter gives the same halves). Half the bytes of fp32.
import { CodecBase } from './codec-base';
import type { Runtime } from '../gpu/runtime';
import { type Tensor } from '../gpu/tensor';
import { fp16Decode, fp16Encode, fp16RoundTrip } from './quantize-kernels';
import { checkKey } from './rounding-key';
import type { CodecSpec } from './spec';
import type { RoundingKey } from './types';
import { checkPayload } from './validate';

export class Fp16Codec extends CodecBase<Extract<CodecSpec, { kind: 'fp16' }>> {
  constructor(rt: Runtime) {
    super(rt, { kind: 'fp16' });
  }

  async encode(rt: Runtime, src: Tensor, n: number, key: RoundingKey): Promise<Uint8Array> {
    this.prepare(rt, src, n, 'src');
    checkKey(key, this.name);
    const words = Math.ceil(n / 2);
    const body = this.scratch.get('encoded', words);
    fp16Encode(rt, src, body, n);
    return this.payloadOf(n, await rt.readU32(body, words), words);
  }

  roundTrip(rt: Runtime, t: Tensor, n: number, key: RoundingKey): void {
    this.prepare(rt, t, n, 't');
    checkKey(key, this.name);
    fp16RoundTrip(rt, t, n);
  }

  protected decodeInto(rt: Runtime, payload: Uint8Array, out: Tensor, n: number, acc: boolean): void {
    this.prepare(rt, out, n, acc ? 'acc' : 'out');
    const { body } = checkPayload(this.spec, payload, n);
    const words = this.scratch.get('received', body.length);
    rt.write(words, body);
    fp16Decode(rt, words, out, n, acc);
  }
}
