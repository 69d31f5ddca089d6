// fp32: the identity codec (today's values, with the wire header). Encode is one readback, decode one upload.
import { CodecBase } from './codec-base';
import type { Runtime } from '../gpu/runtime';
import { type Tensor } from '../gpu/tensor';
import { ewAccumulate } from './quantize-kernels';
import { checkKey } from './rounding-key';
import type { CodecSpec } from './spec';
import type { RoundingKey } from './types';
import { checkPayload } from './validate';

export class Fp32Codec extends CodecBase<Extract<CodecSpec, { kind: 'fp32' }>> {
  constructor(rt: Runtime) {
    super(rt, { kind: 'fp32' });
  }

  async encode(rt: Runtime, src: Tensor, n: number, key: RoundingKey): Promise<Uint8Array> {
    this.prepare(rt, src, n, 'src');
    checkKey(key, this.name);
    return this.payloadOf(n, await rt.read(src, n), n);
  }

  protected decodeInto(rt: Runtime, payload: Uint8Array, out: Tensor, n: number, acc: boolean): void {
    this.prepare(rt, out, n, acc ? 'acc' : 'out');
    const { body } = checkPayload(this.spec, payload, n);
    if (!acc) return rt.write(out, body);
    const tmp = this.scratch.get('decoded', n, 'f32');
    rt.write(tmp, body);
    ewAccumulate(rt, tmp, out, n);
  }

  roundTrip(rt: Runtime, t: Tensor, n: number, key: RoundingKey): void {
    this.prepare(rt, t, n, 't');
    checkKey(key, this.name);
  }
}
