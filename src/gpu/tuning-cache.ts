// Persisted matmul tuning: the autotuner's choices saved per adapter identity and kernel version, so a tab (or any
// caller with a store) times the variants once per GPU and reuses the winners at every later start. The store is an
// interface handed in by the entry point (IndexedDB in a Worker: src/worker/idb-tuning-store.ts), so src/gpu knows
// nothing of the browser's storage. A stored record is only an optimisation: one that fails the schema, was made on
// another adapter or by other kernels is ignored, and the fresh tuning overwrites it.
import { z } from 'zod';
import { applyTuning, matmulChoices, tuneMatmul, type MatmulShape } from './autotune';
import type { AdapterReport } from './device';
import { MATMUL_KERNELS_VERSION, MATMUL_VARIANTS } from './ops/matmul';
import type { Runtime } from './runtime';

/** Key-value storage for tuning records (values are plain structured-cloneable objects). */
export interface TuningStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

const adapterIdentitySchema = z.strictObject({
  vendor: z.string(),
  architecture: z.string(),
  device: z.string(),
  description: z.string(),
});
export type AdapterIdentity = z.infer<typeof adapterIdentitySchema>;

export const tuningRecordSchema = z.strictObject({
  format: z.literal(1),
  adapter: adapterIdentitySchema,
  kernels: z.string(),
  choices: z
    .array(
      z.strictObject({
        shape: z.string().min(1).max(200),
        variant: z.string().refine((v) => MATMUL_VARIANTS.includes(v), 'unknown matmul variant'),
        timingsMs: z.record(z.string(), z.number()),
      }),
    )
    .max(10_000),
});
export type TuningRecord = z.infer<typeof tuningRecordSchema>;

export function adapterIdentity(r: AdapterReport): AdapterIdentity {
  return { vendor: r.vendor, architecture: r.architecture, device: r.device, description: r.description };
}

/** The store key of an adapter's tuning: its full identity plus the variant set's version (a different GPU, driver
 *  description or changed kernels gets a key of its own, so it re-tunes). */
export function tuningKey(id: AdapterIdentity, kernels: string = MATMUL_KERNELS_VERSION): string {
  return `matmul-tuning/${kernels}/${JSON.stringify([id.vendor, id.architecture, id.device, id.description])}`;
}

/** The record's choices if it is a valid record for exactly this adapter and kernel version, else null. */
export function parseTuningRecord(value: unknown, id: AdapterIdentity, kernels: string = MATMUL_KERNELS_VERSION): TuningRecord | null {
  const r = tuningRecordSchema.safeParse(value);
  if (!r.success) return null;
  const rec = r.data;
  const a = rec.adapter;
  const same = a.vendor === id.vendor && a.architecture === id.architecture && a.device === id.device && a.description === id.description;
  return same && rec.kernels === kernels ? rec : null;
}

export interface CachedTuneResult {
  /** Choices adopted from the store (not re-timed). */
  loaded: number;
  /** Shapes timed now. */
  timed: number;
  /** Whether a stored record existed but was ignored (corrupt, foreign adapter or old kernels). */
  rejected: boolean;
}

/**
 * tuneMatmul with persistence: adopts the stored choices for this adapter first, times only the shapes still
 * missing, and stores the merged table when anything was timed (or the stored record was unusable). Store failures
 * (quota, private mode) only cost a re-tune next time: they are logged, never thrown.
 */
export async function tuneMatmulCached(
  rt: Runtime,
  shapes: MatmulShape[],
  store: TuningStore,
  opts: Parameters<typeof tuneMatmul>[2] = {},
): Promise<CachedTuneResult> {
  const id = adapterIdentity(rt.handle.report);
  const key = tuningKey(id);
  let stored: unknown;
  try {
    stored = await store.get(key);
  } catch (e) {
    opts.log?.(`[tune] cannot read stored tuning: ${(e as Error).message}`);
  }
  const rec = stored === undefined ? null : parseTuningRecord(stored, id);
  const rejected = stored !== undefined && rec === null;
  const loaded = rec ? applyTuning(rt, rec.choices) : 0;
  if (rec) opts.log?.(`[tune] ${loaded} stored choices for ${rt.handle.report.key}`);
  if (rejected) opts.log?.(`[tune] stored tuning for ${rt.handle.report.key} is unusable: re-tuning`);
  const timed = await tuneMatmul(rt, shapes, opts);
  if (timed > 0 || rejected) {
    const record: TuningRecord = { format: 1, adapter: id, kernels: MATMUL_KERNELS_VERSION, choices: matmulChoices(rt) };
    try {
      await store.set(key, record);
    } catch (e) {
      opts.log?.(`[tune] cannot store tuning: ${(e as Error).message}`);
    }
  }
  return { loaded, timed, rejected };
}
