// What every codec shares: its spec and name (for errors), scratch buffers on the runtime it was made for, the size
// checks before any GPU work, the payload assembly (header + body words), and decode / decodeAdd as one decodeInto.
import type { Runtime } from '../gpu/runtime';
import { expectSize, type Tensor } from '../gpu/tensor';
import { Scratch } from './scratch';
import type { CodecSpec } from './spec';
import type { GpuCodec, RoundingKey } from './types';
import { checkCount } from './validate';
import { describeCodec, HEADER_BYTES, newPayload, payloadBytes } from './wire-format';

export abstract class CodecBase<S extends CodecSpec> implements GpuCodec {
  protected readonly name: string;
  protected readonly scratch: Scratch;

  constructor(
    rt: Runtime,
    readonly spec: S,
  ) {
    this.name = `${describeCodec(spec)} codec`;
    this.scratch = new Scratch(rt, this.name);
  }

  payloadBytes(n: number): number {
    checkCount(this.spec, n);
    return payloadBytes(this.spec, n);
  }

  abstract encode(rt: Runtime, src: Tensor, n: number, key: RoundingKey): Promise<Uint8Array>;
  abstract roundTrip(rt: Runtime, t: Tensor, n: number, key: RoundingKey): void;

  decode(rt: Runtime, payload: Uint8Array, out: Tensor, n: number): void {
    this.decodeInto(rt, payload, out, n, false);
  }

  decodeAdd(rt: Runtime, payload: Uint8Array, acc: Tensor, n: number): void {
    this.decodeInto(rt, payload, acc, n, true);
  }

  /** Validates `payload` (CodecError), then writes (acc false) or adds (acc true) its n decoded values into `out`. */
  protected abstract decodeInto(rt: Runtime, payload: Uint8Array, out: Tensor, n: number, acc: boolean): void;

  /** The runtime is the scratch's, n is a valid count, and t holds n values: checked before any GPU work. */
  protected prepare(rt: Runtime, t: Tensor, n: number, what: string): void {
    this.scratch.check(rt);
    checkCount(this.spec, n);
    expectSize(this.name, what, t, n);
  }

  /** The wire payload of n values: the header, then the body's `words` 32-bit words. */
  protected payloadOf(n: number, body: ArrayBufferView, words: number): Uint8Array {
    const payload = newPayload(this.spec, n);
    payload.set(new Uint8Array(body.buffer, body.byteOffset, 4 * words), HEADER_BYTES);
    return payload;
  }
}
