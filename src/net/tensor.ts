// What a tensor message is, independent of how it is framed: the descriptor schema validates chunk 0's JSON.

import { z } from 'zod';
import { DTYPES, type DType } from './dtype';

/** A short identifier the layer above gives its tensors (src/protocol/tensors.ts lists the swarm's); opaque here. */
export type TensorKind = string;

/** Flat metadata (run step, microbatch index, ...): JSON scalars only, so it stays small and cheap to validate. */
export type TensorMeta = Record<string, string | number | boolean | null>;

export const MAX_TENSOR_RANK = 8;

export const tensorDescriptorSchema = z.strictObject({
  kind: z
    .string()
    .min(1)
    .max(32)
    .regex(/^[A-Za-z0-9_.-]+$/),
  shape: z.array(z.number().int().nonnegative()).max(MAX_TENSOR_RANK),
  meta: z.record(z.string().max(64), z.union([z.string().max(256), z.number(), z.boolean(), z.null()])),
});

export type TensorDescriptor = z.infer<typeof tensorDescriptorSchema>;

/** The typed array whose element type matches a dtype; f16/bf16 travel as raw 16-bit words. */
export type TensorData = Float32Array | Int32Array | Uint32Array | Int8Array | Uint8Array | Uint16Array;

export interface OutgoingTensor {
  kind: TensorKind;
  dtype: DType;
  shape: readonly number[];
  /** Bytes of the tensor; any typed array view (or a raw byte view) whose byteLength matches dtype x shape. */
  data: ArrayBufferView;
  meta?: TensorMeta;
}

export interface IncomingTensor {
  msgId: number;
  kind: TensorKind;
  dtype: DType;
  shape: number[];
  meta: TensorMeta;
  /** Exactly the received bytes (a fresh buffer owned by the receiver). */
  bytes: Uint8Array;
}

export { DTYPES };

/** A typed-array view of an incoming tensor's bytes, for the common dtypes (copies only if misaligned). */
export function tensorView(t: IncomingTensor): TensorData {
  const b = t.bytes;
  const aligned = (n: number) => (b.byteOffset % n === 0 ? b : b.slice());
  switch (t.dtype) {
    case 'f32': {
      const a = aligned(4);
      return new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
    }
    case 'i32': {
      const a = aligned(4);
      return new Int32Array(a.buffer, a.byteOffset, a.byteLength / 4);
    }
    case 'u32': {
      const a = aligned(4);
      return new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4);
    }
    case 'f16':
    case 'bf16': {
      const a = aligned(2);
      return new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2);
    }
    case 'i8':
      return new Int8Array(b.buffer, b.byteOffset, b.byteLength);
    case 'u8':
      return b;
  }
}
