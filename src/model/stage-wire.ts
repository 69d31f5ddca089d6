// What crosses a pipeline stage's boundaries, as wire payloads (docs/compression.md): a non-last stage encodes its
// output activations with the run's `act` codec and decodes the gradient of that output with the `grad` codec; a
// non-first stage decodes its input activations and encodes their gradient. Encode and decode run on the GPU (the
// codecs of src/compress); only payload bytes meet the host. The codec key of microbatch `mb` of step `step` at
// boundary b (the output of stage b) is {seed, step, mb, stream: 2b} forward and 2b + 1 backward, the same key the
// single-peer engine uses for its round trip in place, so both round the same values the same way.
//
// fp32 (no compression) is the raw f32 bytes, no header: today's wire, bit for bit.
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import { CodecError, createCodec, type GpuCodec, type RoundingKey } from '../compress/codec';
import type { CodecSpec, CompressSpec } from '../compress/spec';

/** The step and microbatch of a boundary tensor (the codec key's seed and stream come from the stage). */
export interface MicrobatchKey {
  step: number;
  mb: number;
}

export type { RoundingKey } from '../compress/codec';

/**
 * Whether `err` is a codec's refusal of a payload (CodecError), in this process or thrown in a Web Worker and
 * re-thrown here (comlink keeps an error's name, not its class).
 */
export function isCodecError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'CodecError';
}

/** What a boundary needs of a codec of src/compress (GpuCodec, docs/compression.md). */
export type BoundaryCodec = Pick<GpuCodec, 'spec' | 'payloadBytes' | 'encode' | 'decode'>;

/** A codec's id in a tensor's meta: the receiver refuses a payload of another codec than the run's. */
export function codecId(spec: CodecSpec): string {
  switch (spec.kind) {
    case 'fp32':
    case 'fp16':
      return spec.kind;
    case 'int8':
    case 'int4':
      return `${spec.kind}.b${spec.block}.${spec.rounding}`;
    case 'topk':
      return `topk.${spec.fraction}`;
  }
}

/** fp32: the raw f32 bytes (little-endian, as the GPU holds them); decode checks the length only, as before. */
export const fp32Codec: BoundaryCodec = {
  spec: { kind: 'fp32' },
  payloadBytes: (n) => 4 * n,
  async encode(rt, src, n) {
    const f = await rt.read(src, n);
    return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  },
  decode(rt, payload, out, n) {
    if (payload.byteLength !== 4 * n) throw new CodecError('fp32', `raw payload of ${payload.byteLength} bytes, expected ${4 * n} (${n} values)`);
    const own = payload.byteOffset % 4 === 0 ? payload : payload.slice();
    rt.write(out, new Float32Array(own.buffer, own.byteOffset, n));
  },
};

/** The codec of one direction; fp32 is the raw adapter above. */
export type CodecFactory = (rt: Runtime, spec: CodecSpec) => BoundaryCodec;

/** fp32 is the raw adapter (no header: today's wire), every other codec src/compress's. */
export function defaultFactory(rt: Runtime, spec: CodecSpec): BoundaryCodec {
  return spec.kind === 'fp32' ? fp32Codec : createCodec(rt, spec);
}

/** Widths of a stage's boundaries: values per token of its input (0: reads tokens) and output (0: ends in the loss). */
export interface BoundaryWidths {
  inWidth: number;
  outWidth: number;
}

export interface StageWireOptions extends BoundaryWidths {
  /** Index of the stage in the run: its input is boundary stage - 1, its output boundary stage. */
  stage: number;
  seed: number;
  /** Tokens per microbatch (B*T). */
  tokens: number;
  compress: CompressSpec;
  codecs?: CodecFactory;
}

/** The codecs and GPU scratch of one stage's boundaries. */
export class StageWire {
  private readonly act: BoundaryCodec;
  private readonly grad: BoundaryCodec;
  /** Decoded input activations (non-first), then copied into a slot. */
  private readonly inScratch: Tensor | null;
  /** Decoded gradient of the output (non-last). */
  private readonly gradScratch: Tensor | null;
  readonly nIn: number;
  readonly nOut: number;
  /**
   * Host milliseconds in the codecs so far (decode, and encode less its GPU wait): the swarm's per-stage time
   * accounting (src/swarm/stage-clock.ts). The GPU side of a codec is the stage's compute.
   */
  codecMs = 0;

  constructor(
    private readonly rt: Runtime,
    private readonly o: StageWireOptions,
  ) {
    const make = o.codecs ?? defaultFactory;
    this.act = make(rt, o.compress.act);
    this.grad = make(rt, o.compress.grad);
    this.nIn = o.tokens * o.inWidth;
    this.nOut = o.tokens * o.outWidth;
    this.inScratch = this.nIn > 0 ? rt.tensor([o.tokens, o.inWidth], 'wire.act_in') : null;
    this.gradScratch = this.nOut > 0 ? rt.tensor([o.tokens, o.outWidth], 'wire.grad_out') : null;
  }

  private key(k: MicrobatchKey, stream: number): RoundingKey {
    return { seed: this.o.seed, step: k.step, mb: k.mb, stream };
  }

  /** Input activations payload -> a GPU tensor [tokens, inWidth] (valid until the next decodeInput). */
  decodeInput(payload: Uint8Array): Tensor {
    if (!this.inScratch) throw new Error('stage-wire: the first stage reads tokens, not activations');
    this.timedDecode(this.act, payload, this.inScratch, this.nIn);
    return this.inScratch;
  }

  /** Output activations -> their payload (boundary `stage`, forward stream). */
  encodeOutput(t: Tensor, k: MicrobatchKey): Promise<Uint8Array> {
    if (this.nOut === 0) throw new Error('stage-wire: the last stage sends no activations');
    return this.timedEncode(this.act.encode(this.rt, t, this.nOut, this.key(k, 2 * this.o.stage)));
  }

  /** Payload of the output's gradient -> a GPU tensor [tokens, outWidth] (valid until the next decodeOutputGrad). */
  decodeOutputGrad(payload: Uint8Array): Tensor {
    if (!this.gradScratch) throw new Error('stage-wire: the last stage takes no output gradient');
    this.timedDecode(this.grad, payload, this.gradScratch, this.nOut);
    return this.gradScratch;
  }

  /** Gradient of the input -> its payload (boundary `stage - 1`, backward stream). */
  encodeInputGrad(t: Tensor, k: MicrobatchKey): Promise<Uint8Array> {
    if (this.nIn === 0) throw new Error('stage-wire: the first stage sends no input gradient');
    return this.timedEncode(this.grad.encode(this.rt, t, this.nIn, this.key(k, 2 * (this.o.stage - 1) + 1)));
  }

  /** A decode's host time (it waits for nothing: its kernels are only recorded). */
  private timedDecode(codec: BoundaryCodec, payload: Uint8Array, out: Tensor, n: number): void {
    const t0 = performance.now();
    codec.decode(this.rt, payload, out, n);
    this.codecMs += performance.now() - t0;
  }

  /** An encode's host time: its wall time less the GPU waits in it (other waits overlapping it count as GPU too). */
  private async timedEncode(p: Promise<Uint8Array>): Promise<Uint8Array> {
    const t0 = performance.now();
    const w0 = this.rt.stats.waitMs;
    try {
      return await p;
    } finally {
      this.codecMs += Math.max(0, performance.now() - t0 - (this.rt.stats.waitMs - w0));
    }
  }

  dispose(): void {
    if (this.inScratch) this.rt.release(this.inScratch);
    if (this.gradScratch) this.rt.release(this.gradScratch);
  }
}
