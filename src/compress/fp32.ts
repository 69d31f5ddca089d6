// fp32: the identity codec (today's values, with the wire header). Encode is one readback, decode one upload.
import type { Runtime } from '../gpu/runtime';
import { expectSize, type Tensor } from '../gpu/tensor';
import { ewAccumulate } from './quantize-kernels';
import { checkKey } from './rounding-key';
import { Scratch } from './scratch';
import type { CodecSpec } from './spec';
import type { GpuCodec, RoundingKey } from './types';
import { checkCount, checkPayload } from './validate';
import { HEADER_BYTES, newPayload, payloadBytes } from './wire-format';

export class Fp32Codec implements GpuCodec {
  readonly spec: CodecSpec = { kind: 'fp32' };
  private readonly scratch: Scratch;

  constructor(rt: Runtime) {
    this.scratch = new Scratch(rt, 'fp32 codec');
  }

  payloadBytes(n: number): number {
    checkCount(this.spec, n);
    return payloadBytes(this.spec, n);
  }

  async encode(rt: Runtime, src: Tensor, n: number, key: RoundingKey): Promise<Uint8Array> {
    this.prepare(rt, src, n, 'src');
    checkKey(key, 'fp32 codec');
    const values = await rt.read(src, n);
    const payload = newPayload(this.spec, n);
    payload.set(new Uint8Array(values.buffer, values.byteOffset, 4 * n), HEADER_BYTES);
    return payload;
  }

  decode(rt: Runtime, payload: Uint8Array, out: Tensor, n: number): void {
    this.prepare(rt, out, n, 'out');
    rt.write(out, checkPayload(this.spec, payload, n).body);
  }

  decodeAdd(rt: Runtime, payload: Uint8Array, acc: Tensor, n: number): void {
    this.prepare(rt, acc, n, 'acc');
    const { body } = checkPayload(this.spec, payload, n);
    const tmp = this.scratch.get('decoded', n, 'f32');
    rt.write(tmp, body);
    ewAccumulate(rt, tmp, acc, n);
  }

  roundTrip(rt: Runtime, t: Tensor, n: number, key: RoundingKey): void {
    this.prepare(rt, t, n, 't');
    checkKey(key, 'fp32 codec');
  }

  private prepare(rt: Runtime, t: Tensor, n: number, what: string): void {
    this.scratch.check(rt);
    checkCount(this.spec, n);
    expectSize('fp32 codec', what, t, n);
  }
}
