// The tensor kind a worker uploads its step inputs with to the validator a `validate` named (docs/trust.md
// "Validators", src/swarm/validator.ts). One upload: a head (n = the parts that follow), then the parts in order
// (a transport delivers a link's tensors in send order). Parts: the boundary payloads the worker received (`act`,
// `grad`, u8) and, across adapter kinds, the values the validator compares within the run's tolerance: the
// worker's contribution (`contrib`, f32) and the payloads it sent (`out-act`, `out-grad`, u8).
import { z } from 'zod';
import type { TensorMeta } from '../net/tensor';

export const VALIDATION_KIND = 'vinput';

const count = z.number().int().nonnegative();

export const validationPartSchema = z.enum(['head', 'act', 'grad', 'contrib', 'out-act', 'out-grad']);
export type ValidationPart = z.infer<typeof validationPartSchema>;

export const validationMetaSchema = z.object({
  step: count,
  attempt: count,
  stage: count,
  part: validationPartSchema,
  /** The microbatch of a payload part (-1: head, contrib). */
  mb: z.number().int().min(-1).max(1_000_000),
  /** Head: how many parts follow. */
  n: z.number().int().nonnegative().max(4096),
});
export type ValidationMeta = z.infer<typeof validationMetaSchema>;

export function validationMeta(m: ValidationMeta): TensorMeta {
  return m;
}

export function readValidationMeta(meta: TensorMeta): { ok: true; value: ValidationMeta } | { ok: false; error: string } {
  const r = validationMetaSchema.safeParse(meta);
  if (r.success) return { ok: true, value: r.data };
  const i = r.error.issues[0];
  return { ok: false, error: `validation upload meta: ${i ? `${i.path.map(String).join('.')}: ${i.message}` : 'invalid'}` };
}
