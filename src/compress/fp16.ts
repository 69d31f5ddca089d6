// fp16: IEEE binary16, round to nearest even, overflow to inf and NaN kept, like a real cast (shaders/quantize.wgsl
// converts on the bits, so every adapter gives the same halves). Half the bytes of fp32.
import type { Runtime } from '../gpu/runtime';
import { expectSize, type Tensor } from '../gpu/tensor';
import { fp16Decode, fp16Encode, fp16RoundTrip } from './quantize-kernels';
import { checkKey } from './rounding-key';
import { Scratch } from './scratch';
import type { CodecSpec } from './spec';
import type { GpuCodec, RoundingKey } from './types';
import { checkCount, checkPayload } from './validate';
import { HEADER_BYTES, newPayload, payloadBytes } from './wire-format';

export class Fp16Codec implements GpuCodec {
  readonly spec: CodecSpec = { kind: 'fp16' };
  private readonly scratch: Scratch;

  constructor(rt: Runtime) {
    this.scratch = new Scratch(rt, 'fp16 codec');
  }

  payloadBytes(n: number): number {
    checkCount(this.spec, n);
    return payloadBytes(this.spec, n);
  }

  async encode(rt: Runtime, src: Tensor, n: number, key: RoundingKey): Promise<Uint8Array> {
    this.prepare(rt, src, n, 'src');
    checkKey(key, 'fp16 codec');
    const words = Math.ceil(n / 2);
    const body = this.scratch.get('encoded', words);
    fp16Encode(rt, src, body, n);
    const bits = await rt.readU32(body, words);
    const payload = newPayload(this.spec, n);
    payload.set(new Uint8Array(bits.buffer, bits.byteOffset, 4 * words), HEADER_BYTES);
    return payload;
  }

  decode(rt: Runtime, payload: Uint8Array, out: Tensor, n: number): void {
    this.decodeInto(rt, payload, out, n, false);
  }

  decodeAdd(rt: Runtime, payload: Uint8Array, acc: Tensor, n: number): void {
    this.decodeInto(rt, payload, acc, n, true);
  }

  roundTrip(rt: Runtime, t: Tensor, n: number, key: RoundingKey): void {
    this.prepare(rt, t, n, 't');
    checkKey(key, 'fp16 codec');
    fp16RoundTrip(rt, t, n);
  }

  private decodeInto(rt: Runtime, payload: Uint8Array, out: Tensor, n: number, acc: boolean): void {
    this.prepare(rt, out, n, acc ? 'acc' : 'out');
    const { body } = checkPayload(this.spec, payload, n);
    const words = this.scratch.get('received', body.length);
    rt.write(words, body);
    fp16Decode(rt, words, out, n, acc);
  }

  private prepare(rt: Runtime, t: Tensor, n: number, what: string): void {
    this.scratch.check(rt);
    checkCount(this.spec, n);
    expectSize('fp16 codec', what, t, n);
  }
}
