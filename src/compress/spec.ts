// What a run compresses, as data: the codec of each wire direction, the learned bottleneck at stage boundaries and
// the replica sync mode (docs/compression.md). The run config carries one `CompressSpec`; every peer and the
// single-peer engine build the same codecs from it, so a run is reproducible and a validator can recompute it.
import { z } from 'zod';

const blockSize = z.number().int().min(8).max(4096);
const rounding = z.enum(['nearest', 'stochastic']);

/** One tensor codec. `fp32` is the identity (today's wire). `topk` is for replica sync only (with error feedback). */
export const codecSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('fp32') }),
  z.object({ kind: z.literal('fp16') }),
  /** Blockwise absmax int8: one f32 scale per `block` values. */
  z.object({ kind: z.literal('int8'), block: blockSize, rounding }),
  /** Blockwise absmax int4, two values per byte: one f32 scale per `block` values. */
  z.object({ kind: z.literal('int4'), block: blockSize, rounding }),
  /** The `fraction` largest-magnitude values with their indices; what is not sent stays in the error-feedback buffer. */
  z.object({ kind: z.literal('topk'), fraction: z.number().gt(0).max(1) }),
]);
export type CodecSpec = z.infer<typeof codecSpecSchema>;
export type CodecKind = CodecSpec['kind'];

/** Codecs for activations and their gradients: everything but top-k (a dense tensor must arrive dense). */
export const denseCodecSpecSchema = codecSpecSchema.refine((c) => c.kind !== 'topk', {
  message: 'top-k is for replica sync only; activations and their gradients use fp32, fp16, int8 or int4',
});

/**
 * A learned bottleneck at every stage boundary (IOTA style): the sending stage ends in a down-projection to `width`
 * channels, the receiving stage starts with an up-projection back to n_embd. With `passthrough` the first `width`
 * channels of the residual stream pass straight through (added to the projection).
 */
export const bottleneckSpecSchema = z.object({ width: z.number().int().positive(), passthrough: z.boolean() });
export type BottleneckSpec = z.infer<typeof bottleneckSpecSchema>;

/**
 * Replica sync. `per-step`: exact all-reduce of every step's gradients (fp32; the default and what parity tests
 * use). `local`: each replica takes H inner optimizer steps, then the stage's replicas average their compressed
 * pseudo-gradients and apply an outer Nesterov step (DiLoCo / IOTA).
 */
export const syncSpecSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('per-step') }),
  z.object({
    mode: z.literal('local'),
    H: z.number().int().positive().max(100_000),
    outerLr: z.number().positive().max(10),
    outerMomentum: z.number().min(0).lt(1),
    codec: codecSpecSchema,
  }),
]);
export type SyncSpec = z.infer<typeof syncSpecSchema>;

export const compressSpecSchema = z.object({
  /** Forward activations across stage boundaries. */
  act: denseCodecSpecSchema,
  /** Activation gradients backward across stage boundaries. */
  grad: denseCodecSpecSchema,
  bottleneck: bottleneckSpecSchema.nullable(),
  sync: syncSpecSchema,
});
export type CompressSpec = z.infer<typeof compressSpecSchema>;

/** Today's wire: fp32 everywhere, no bottleneck, exact per-step sync. */
export const COMPRESS_NONE: CompressSpec = { act: { kind: 'fp32' }, grad: { kind: 'fp32' }, bottleneck: null, sync: { mode: 'per-step' } };

/** DiLoCo / IOTA outer-step defaults. */
export const OUTER_DEFAULTS = { outerLr: 0.7, outerMomentum: 0.9 } as const;
