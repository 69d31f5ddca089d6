// The run configuration the coordinator decides and every peer receives in `swarm-assign` (docs/swarm.md). Its
// type is derived from the schema; the checks at the end keep it assignable to the model's own types. Validation: a real GPT config, stages that cover [0, n_layer) contiguously in order, T <= block_size, and a sane
// optimizer/schedule.
import { z } from 'zod';
import { compressSpecSchema } from '../compress/spec';
import type { GPTConfig } from '../model/config';
import type { LrSchedule } from '../model/schedule';
import type { OptimizerHyper, StageRange } from '../model/stage';

const posInt = z.number().int().positive();

export const gptConfigSchema = z.object({
  n_layer: posInt,
  n_head: posInt,
  n_embd: posInt,
  vocab_size: posInt,
  block_size: posInt,
});

export const stageRangeSchema = z.object({ layerStart: z.number().int().nonnegative(), layerEnd: posInt });

export const lrScheduleSchema = z.object({
  lr: z.number().nonnegative(),
  minLr: z.number().nonnegative(),
  warmup: z.number().int().nonnegative(),
  decaySteps: z.number().int().nonnegative(),
});

export const optimizerHyperSchema = z.object({
  lr: z.number().nonnegative(),
  beta1: z.number().min(0).lt(1),
  beta2: z.number().min(0).lt(1),
  eps: z.number().positive(),
  weightDecay: z.number().nonnegative(),
  gradClip: z.number().nonnegative(),
});

/**
 * How much a run trusts its peers (docs/trust.md). `aggregation`: how a stage's replicas combine their gradients —
 * 'sum' (ring all-reduce: trusts every replica), 'trimmed-mean' or 'centered-clip' (every replica's gradient reaches
 * every replica, non-finite and norm outliers are excluded, the rest combined robustly and deterministically).
 */
export const trustSpecSchema = z.object({
  aggregation: z.enum(['sum', 'trimmed-mean', 'centered-clip']),
  /** trimmed-mean: values dropped at each end of every coordinate (default: floor((n-1)/3) of n replicas). */
  trim: z.number().int().nonnegative().max(127).optional(),
  /** centered-clip: clipping radius (default: 2 x the median distance to the coordinate-wise median) and iterations (default 3). */
  clipTau: z.number().positive().optional(),
  clipIters: posInt.max(100).optional(),
  /** A replica's gradient whose norm exceeds normFactor (default 4) x the median of its stage's is excluded (a strike). */
  normFactor: z.number().gt(1).optional(),
  /** Fraction of (step, worker) contributions a validator recomputes; 0 = no validation. */
  validationRate: z.number().min(0).max(1),
  /** Strikes that evict a peer. */
  strikes: posInt.max(1000),
  /**
   * Largest difference a validation accepts when validator and worker run on different adapter kinds, relative to
   * the largest |value| of the compared vector (a loss: to max(1, |loss|)); default 1e-5 (src/swarm/validator.ts).
   */
  tolerance: z.number().nonnegative().optional(),
});
export type TrustSpec = z.infer<typeof trustSpecSchema>;

/** A run without a `trust` section: trusting aggregation, no validators (a private swarm on one machine). */
export const TRUST_NONE: TrustSpec = { aggregation: 'sum', validationRate: 0, strikes: 3 };

export function trustOf(c: { trust?: TrustSpec }): TrustSpec {
  return c.trust ?? TRUST_NONE;
}

/**
 * Stage checkpoints (docs/resilience.md): every peer saves its stage state after every `every`-th applied step (the
 * step count is a multiple of `every`) and keeps the newest `keep` of them, so the whole run can roll back to a step
 * every stage holds when a lost stage is restored from an older copy.
 */
export const checkpointSpecSchema = z.object({ every: posInt.max(1_000_000), keep: posInt.max(16) });
export type CheckpointSpec = z.infer<typeof checkpointSpecSchema>;

/** A run without a `checkpoint` section: every 5 steps, the newest 3 kept. */
export const CHECKPOINT_DEFAULT: CheckpointSpec = { every: 5, keep: 3 };

export function checkpointOf(c: { checkpoint?: CheckpointSpec }): CheckpointSpec {
  return c.checkpoint ?? CHECKPOINT_DEFAULT;
}

/**
 * The run's dataset (docs/deployment.md, "Your own data"): which tokenizer turned which text into token ids, and the
 * hashes every peer checks its tokens against, so tabs and Node peers train on the same bytes. The split is
 * nanoGPT's: the first (1 - valFraction) of the tokens train, the rest validate. A run without `data` trains on
 * public/tinyshakespeare.txt with the character tokenizer (every run before this section existed).
 */
export const dataSpecSchema = z.object({
  /** 'char': one token per code point, vocabulary = the text's characters by code point; 'gpt2': GPT-2 BPE (r50k). */
  tokenizer: z.enum(['char', 'gpt2']),
  /** gpt2 only: 'full' = GPT-2's 50,257 ids; 'used' = only the ids the text uses, renumbered densely (a small head). */
  vocab: z.enum(['full', 'used']).optional(),
  /** What the person called it (a file's base name); display only. */
  name: z.string().min(1).max(200),
  /** sha256 (64 lowercase hex digits) of the train split's token ids as little-endian u32. */
  trainSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** sha256 of the validation split's token ids (little-endian u32). */
  valSha256: z.string().regex(/^[0-9a-f]{64}$/),
  trainTokens: posInt.max(2 ** 32),
  valTokens: z
    .number()
    .int()
    .nonnegative()
    .max(2 ** 32),
  /**
   * Where peers fetch the splits: a base URL (absolute http(s), or a path on the page's own host) under which
   * `train.u32`, `val.u32` and `tokenizer.json` live (tabswarm serve: /api/data/<trainSha256>/). Absent: every
   * peer brings the same file itself (`tabswarm peer --data FILE --tokenizer ...`) and checks the hashes.
   */
  url: z.string().min(1).max(2000).optional(),
});
export type DataSpec = z.infer<typeof dataSpecSchema>;

export const runConfigSchema = z
  .object({
    runId: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9_.:-]+$/),
    model: gptConfigSchema,
    stages: z.array(stageRangeSchema).min(1).max(256),
    /** Sequences per microbatch. */
    B: posInt,
    /** Tokens per sequence (<= block_size). */
    T: posInt,
    /** Microbatches per step (global batch = M*B sequences). */
    M: posInt.max(4096),
    steps: z.number().int().nonnegative(),
    schedule: lrScheduleSchema,
    optimizer: optimizerHyperSchema,
    /** Initial weights (GPT-2 init) and the batch sampler's seed. */
    seed: z.number().int().nonnegative(),
    /** In-flight microbatches a stage keeps activations for (pipeline depth); default min(M, 8). */
    slots: posInt.max(64).optional(),
    /** Wire codecs, bottleneck and sync mode (src/compress/spec.ts); absent = COMPRESS_NONE (fp32, per-step). */
    compress: compressSpecSchema.optional(),
    /** Byzantine tolerance: robust aggregation, validators, strikes (docs/trust.md); absent = TRUST_DEFAULTS. */
    trust: trustSpecSchema.optional(),
    /** Stage checkpoints: how often peers save and how many they keep (docs/resilience.md); absent = CHECKPOINT_DEFAULT. */
    checkpoint: checkpointSpecSchema.optional(),
    /** The dataset and tokenizer (docs/deployment.md); absent = tinyshakespeare, character tokenizer. */
    data: dataSpecSchema.optional(),
  })
  .superRefine((c, ctx) => {
    const m = c.model;
    if (m.n_embd % m.n_head !== 0)
      ctx.addIssue({ code: 'custom', path: ['model', 'n_embd'], message: `n_embd ${m.n_embd} is not divisible by n_head ${m.n_head}` });
    if (c.T > m.block_size) ctx.addIssue({ code: 'custom', path: ['T'], message: `T ${c.T} exceeds block_size ${m.block_size}` });
    let next = 0;
    c.stages.forEach((s, i) => {
      if (s.layerStart !== next)
        ctx.addIssue({
          code: 'custom',
          path: ['stages', i, 'layerStart'],
          message: `stage ${i} starts at layer ${s.layerStart}, expected ${next} (stages must be contiguous from 0)`,
        });
      if (s.layerEnd <= s.layerStart)
        ctx.addIssue({ code: 'custom', path: ['stages', i], message: `stage ${i} [${s.layerStart}, ${s.layerEnd}) is empty` });
      next = s.layerEnd;
    });
    if (next !== m.n_layer) ctx.addIssue({ code: 'custom', path: ['stages'], message: `stages end at layer ${next}, expected n_layer ${m.n_layer}` });
    if (c.schedule.lr !== c.optimizer.lr)
      ctx.addIssue({
        code: 'custom',
        path: ['optimizer', 'lr'],
        message: 'optimizer.lr must equal schedule.lr (the schedule drives the learning rate)',
      });
  });

export type RunConfig = z.infer<typeof runConfigSchema>;

// Compile-time checks: a RunConfig's parts are what the model layer takes (and the other way round).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const compatible = {
  model: true satisfies Same<RunConfig['model'], GPTConfig>,
  stages: true satisfies Same<RunConfig['stages'][number], StageRange>,
  schedule: true satisfies Same<RunConfig['schedule'], LrSchedule>,
  optimizer: true satisfies Same<RunConfig['optimizer'], OptimizerHyper>,
};
void compatible;

/** Validates (throws with every problem listed) and returns a typed RunConfig. */
export function parseRunConfig(x: unknown): RunConfig {
  const r = runConfigSchema.safeParse(x);
  if (!r.success) {
    throw new Error(`invalid run config: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}

export function slotCount(c: RunConfig): number {
  return c.slots ?? Math.min(c.M, 8);
}
