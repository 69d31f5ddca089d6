// The swarm's tensor kinds and their meta: one schema per kind. src/net carries a tensor's meta as a flat record of
// JSON scalars it does not read; receivers here parse it into typed meta, and a tensor whose meta does not parse is
// dropped and reported (never thrown into the process).
import { z } from 'zod';
import type { IncomingTensor, TensorMeta } from '../net/tensor';
import { digestSigSchema, signedDigestSchema } from './digest-signing';

const count = z.number().int().nonnegative();
const stepKey = { step: count, attempt: count };

/** Pipeline tensors of one microbatch: activations forward, activation gradients backward (targets never travel). */
export const microbatchMetaSchema = z.object({
  ...stepKey,
  mb: count,
  /** First-stage replica that owns the microbatch. */
  origin: z.string().max(64),
  /** Peers the microbatch passed through, comma-separated (bounded: the tail is kept). */
  route: z.string().max(256),
  /** Activations and their gradients: the id of the codec of the payload (src/model/stage-wire.ts codecId). */
  codec: z.string().min(1).max(64).optional(),
  /** SHA-256 digest of the payload bytes and the sender's signature of it (digest-signing.ts payloadSigningText). */
  digest: signedDigestSchema,
  sig: digestSigSchema,
});
export type MicrobatchMeta = z.infer<typeof microbatchMetaSchema>;

/** Tied wte gradient exchanged between the first and last stage after every microbatch is done. */
export const tieMetaSchema = z.object({ ...stepKey, mb: z.literal(-1) });
export type TieMeta = z.infer<typeof tieMetaSchema>;

/** Local-steps sync payload (src/swarm/local-sync.ts): replica `rank` of stage `stage`, after step `step`. */
export const syncMetaSchema = z.object({ step: count, stage: count, rank: count });
export type SyncMeta = z.infer<typeof syncMetaSchema>;

/** Parses a sync payload's meta. */
export function readSyncMeta(meta: TensorMeta): TensorRead<SyncMeta> {
  const r = syncMetaSchema.safeParse(meta);
  return r.success ? { ok: true, value: r.data } : { ok: false, error: `sync meta: ${issues(r.error)}` };
}
export function syncMeta(m: SyncMeta): TensorMeta {
  return m;
}

/**
 * Robust aggregation (src/swarm/robust-reduce.ts): replica `rank` of `stage`'s gradient divided by its microbatch
 * count `count` (0: it ran none, nothing to combine), `n` f32 values. `digest`: SHA-256 digest of the values' bytes,
 * `sig`: the sender's signature of it (src/protocol/digest-signing.ts robustSigningText), which the receiver checks
 * and reports with the digest.
 */
export const robustMetaSchema = z.object({
  ...stepKey,
  stage: count,
  rank: count,
  count: count.max(1 << 20),
  n: count,
  digest: signedDigestSchema,
  sig: digestSigSchema,
});
export type RobustMeta = z.infer<typeof robustMetaSchema>;

export function readRobustMeta(meta: TensorMeta): TensorRead<RobustMeta> {
  const r = robustMetaSchema.safeParse(meta);
  return r.success ? { ok: true, value: r.data } : { ok: false, error: `robust-grad meta: ${issues(r.error)}` };
}
export function robustMeta(m: RobustMeta): TensorMeta {
  return m;
}

/** All-reduce shard (src/swarm/allreduce.ts). */
export const allreduceMetaSchema = z.object({
  tag: z.string().min(1).max(256),
  phase: z.enum(['scatter', 'gather']),
  shard: count,
  from: count,
  size: z.number().int().positive(),
  n: count,
});
export type AllreduceMeta = z.infer<typeof allreduceMetaSchema>;

/**
 * Stage state transfer (src/swarm/state-transfer.ts): the first part (the layout) carries the transfer's header;
 * the caller's own flat meta (e.g. {stage, runId}) travels beside it, so the header schema is loose.
 */
export const stateHeadMetaSchema = z.looseObject({
  xfer: z.string().min(1).max(64),
  part: z.literal('layout'),
  step: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  n: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  digest: z.string().min(1).max(64),
  /** Local-steps mode: the outer state's shared parts (θ_sync, outer momentum) follow the AdamW moments. */
  outer: z.boolean().optional(),
});
export type StateHeadMeta = z.infer<typeof stateHeadMetaSchema>;

/** The later parts of a state transfer: the flat f32 buffers, in this order. */
export const STATE_BUFFER_PARTS = ['params', 'm', 'v'] as const;
/** With `outer` in the head: the local-steps outer state's shared parts, after the buffers above. */
export const STATE_OUTER_PARTS = ['sync', 'mom'] as const;
export const statePartMetaSchema = z.object({ xfer: z.string().min(1).max(64), part: z.enum([...STATE_BUFFER_PARTS, ...STATE_OUTER_PARTS]) });
export type StatePartMeta = z.infer<typeof statePartMetaSchema>;

/** The header keys of a state transfer; caller meta may not use them. */
export const STATE_RESERVED_META = new Set(['xfer', 'part', 'step', 'n', 'digest', 'outer']);

/** Parses a state-transfer part's meta: the head (part 'layout') or a buffer part. */
export function readStateMeta(meta: TensorMeta): TensorRead<{ head: StateHeadMeta } | { part: StatePartMeta }> {
  if (meta.part === 'layout') {
    const r = stateHeadMetaSchema.safeParse(meta);
    return r.success ? { ok: true, value: { head: r.data } } : { ok: false, error: `state head meta: ${issues(r.error)}` };
  }
  const r = statePartMetaSchema.safeParse(meta);
  return r.success ? { ok: true, value: { part: r.data } } : { ok: false, error: `state part meta: ${issues(r.error)}` };
}
export function stateHeadMeta(m: StateHeadMeta, extra: TensorMeta): TensorMeta {
  const head: TensorMeta = { ...extra, xfer: m.xfer, part: m.part, step: m.step, n: m.n, digest: m.digest };
  if (m.outer) head.outer = true;
  return head;
}
export function statePartMeta(m: StatePartMeta): TensorMeta {
  return m;
}

/** A pipeline/step tensor with its typed meta, discriminated by kind. */
export type StepTensor = { kind: 'act' | 'grad'; meta: MicrobatchMeta; x: IncomingTensor } | { kind: 'tie'; meta: TieMeta; x: IncomingTensor };

export type TensorRead<T> = { ok: true; value: T } | { ok: false; error: string };

function issues(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(meta)'}: ${i.message}`)
    .join('; ');
}

/** Parses the meta of a step tensor (kinds act, grad, tie). */
const microbatchKindSchema = z.enum(['act', 'grad']);

export function readStepTensor(x: IncomingTensor): TensorRead<StepTensor> {
  const mbKind = microbatchKindSchema.safeParse(x.kind);
  if (mbKind.success) {
    const r = microbatchMetaSchema.safeParse(x.meta);
    return r.success ? { ok: true, value: { kind: mbKind.data, meta: r.data, x } } : { ok: false, error: `${x.kind} meta: ${issues(r.error)}` };
  }
  if (x.kind === 'tie') {
    const r = tieMetaSchema.safeParse(x.meta);
    return r.success ? { ok: true, value: { kind: 'tie', meta: r.data, x } } : { ok: false, error: `tie meta: ${issues(r.error)}` };
  }
  return { ok: false, error: `unknown tensor kind ${x.kind.slice(0, 64)}` };
}

/** Parses an all-reduce shard's meta. */
export function readAllreduceMeta(meta: TensorMeta): TensorRead<AllreduceMeta> {
  const r = allreduceMetaSchema.safeParse(meta);
  return r.success ? { ok: true, value: r.data } : { ok: false, error: `allreduce meta: ${issues(r.error)}` };
}

/** The meta a sender writes, checked against the kind's schema at compile time. */
export function microbatchMeta(m: MicrobatchMeta): TensorMeta {
  return m;
}
export function tieMeta(m: TieMeta): TensorMeta {
  return m;
}
export function allreduceMeta(m: AllreduceMeta): TensorMeta {
  return m;
}
