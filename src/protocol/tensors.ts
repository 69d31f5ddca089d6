// The swarm's tensor kinds and their meta: one schema per kind. src/net carries a tensor's meta as a flat record of
// JSON scalars it does not read; receivers here parse it into typed meta, and a tensor whose meta does not parse is
// dropped and reported (never thrown into the process).
import { z } from 'zod';
import type { IncomingTensor, TensorMeta } from '../net/tensor';

const count = z.number().int().nonnegative();
const stepKey = { step: count, attempt: count };

/** Pipeline tensors of one microbatch: activations and targets forward, activation gradients backward. */
export const microbatchMetaSchema = z.object({
  ...stepKey,
  mb: count,
  /** First-stage replica that owns the microbatch. */
  origin: z.string().max(64),
  /** Peers the microbatch passed through, comma-separated (bounded: the tail is kept). */
  route: z.string().max(256),
});
export type MicrobatchMeta = z.infer<typeof microbatchMetaSchema>;

/** Tied wte gradient exchanged between the first and last stage after every microbatch is done. */
export const tieMetaSchema = z.object({ ...stepKey, mb: z.literal(-1) });
export type TieMeta = z.infer<typeof tieMetaSchema>;

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

/** A pipeline/step tensor with its typed meta, discriminated by kind. */
export type StepTensor =
  | { kind: 'act' | 'targets' | 'grad'; meta: MicrobatchMeta; x: IncomingTensor }
  | { kind: 'tie'; meta: TieMeta; x: IncomingTensor };

export type TensorRead<T> = { ok: true; value: T } | { ok: false; error: string };

function issues(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(meta)'}: ${i.message}`)
    .join('; ');
}

/** Parses the meta of a step tensor (kinds act, targets, grad, tie). */
const microbatchKindSchema = z.enum(['act', 'targets', 'grad']);

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
