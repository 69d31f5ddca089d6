// Error feedback for compressed replica sync (DiLoCo-style pseudo-gradients, top-k): what a codec did not send is
// kept and added to the next input, so nothing is lost, only delayed.
//   acc = err + x;  payload = encode(acc);  err = acc - decode(payload)
// With top-k the decoded values are acc's own bits at the sent indices and 0 elsewhere, so sent + err == acc exactly.
// The state (err) lives on the GPU; readError / writeError move it to a joiner. If encode throws (a non-finite input),
// err is left as it was.
import type { Runtime } from '../gpu/runtime';
import { expectSize, type Tensor } from '../gpu/tensor';
import { ewAdd, ewSub } from './quantize-kernels';
import type { GpuCodec, RoundingKey } from './types';
import { checkCount } from './validate';
import { describeCodec } from './wire-format';

export class ErrorFeedbackEncoder {
  private readonly err: Tensor;
  private readonly acc: Tensor;
  private readonly decoded: Tensor;
  private readonly name: string;
  private busy = false;

  constructor(
    private readonly rt: Runtime,
    readonly codec: GpuCodec,
    readonly n: number,
  ) {
    checkCount(codec.spec, n);
    this.name = `error feedback (${describeCodec(codec.spec)})`;
    this.err = rt.tensor([n], `${this.name} err`);
    this.acc = rt.tensor([n], `${this.name} acc`);
    this.decoded = rt.tensor([n], `${this.name} decoded`);
    rt.fill(this.err, 0);
  }

  /** The payload of err + x (x's first n values); err becomes what that payload leaves out. One call at a time. */
  async encode(x: Tensor, key: RoundingKey): Promise<Uint8Array> {
    if (this.busy) throw new Error(`${this.name}: encode called while the previous encode is still running`);
    expectSize(this.name, 'x', x, this.n);
    this.busy = true;
    try {
      ewAdd(this.rt, this.err, x, this.acc, this.n);
      const payload = await this.codec.encode(this.rt, this.acc, this.n, key);
      this.codec.decode(this.rt, payload, this.decoded, this.n);
      ewSub(this.rt, this.acc, this.decoded, this.err, this.n);
      return payload;
    } finally {
      this.busy = false;
    }
  }

  /** Forgets the residual (err = 0). */
  reset(): void {
    this.rt.fill(this.err, 0);
  }

  /** The residual, for state transfer to a joiner. */
  readError(): Promise<Float32Array> {
    return this.rt.read(this.err, this.n);
  }

  /** Sets the residual (a joiner receiving state). Refuses a wrong length or a non-finite value. */
  writeError(values: Float32Array): void {
    if (values.length !== this.n) throw new Error(`${this.name}: writeError got ${values.length} values, expected ${this.n}`);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`${this.name}: writeError value ${bad} is ${values[bad]} (not finite)`);
    this.rt.write(this.err, values);
  }

  /** Returns the GPU buffers to the runtime's pool; the encoder must not be used afterwards. */
  release(): void {
    for (const t of [this.err, this.acc, this.decoded]) this.rt.release(t);
  }
}
