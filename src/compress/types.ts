// The codec contract (docs/compression.md "Codec contract"): every wire codec encodes and decodes on the GPU, and
// its round trip in place is bitwise what decode(encode(t)) gives.
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import type { CodecSpec } from './spec';

/**
 * What seeds stochastic rounding: the same key gives the same bits on every peer. Each field is an integer in
 * [0, 2^32). `stream`: boundary*2 + dir for activations (dir 0) and their gradients (dir 1), or a sync tag.
 */
export interface RoundingKey {
  seed: number;
  step: number;
  mb: number;
  stream: number;
}

export interface GpuCodec {
  readonly spec: CodecSpec;
  /** Exact byte length of a payload of n values, header included (always a multiple of 4). */
  payloadBytes(n: number): number;
  /** The first n values of src as a payload: GPU kernels, then one readback. Throws CodecError on a non-finite input (int8/int4/topk). */
  encode(rt: Runtime, src: Tensor, n: number, key: RoundingKey): Promise<Uint8Array>;
  /** Validates the payload on the host (CodecError), then decodes into out's first n elements on the GPU. */
  decode(rt: Runtime, payload: Uint8Array, out: Tensor, n: number): void;
  /** Like decode, but adds the decoded values into acc's first n elements (summing replicas in rank order). */
  decodeAdd(rt: Runtime, payload: Uint8Array, acc: Tensor, n: number): void;
  /** In place on t's first n elements: bitwise decode(encode(t)) for finite inputs, with no readback. */
  roundTrip(rt: Runtime, t: Tensor, n: number, key: RoundingKey): void;
}
