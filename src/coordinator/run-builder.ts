// The one place a run is built: options (each one optional) -> a validated RunConfig, with ONE set of defaults
// shared by `tabswarm coordinator`, `tabswarm demo` and the coordinator page (coordinator.html). The defaults are
// the demo's model: small enough that SwiftShader tabs train it at a visible pace. Every option has one name, used
// as the CLI flag (`--batch-size 8`) and as the coordinator page's URL parameter (`?batch-size=8`).
import { z } from 'zod';
import { DEFAULT_OPTIMIZER, type StageRange } from '../model/stage';
import { parseRunConfig, TRUST_NONE, trustSpecSchema, type DataSpec, type RunConfig } from '../protocol/run-config';
import { checkCompressForModel, CompressOptionError, defaultCompressFor, isCompressNone, parseCompressOption } from './compress-option';

const count = z.number().int().positive();
const nonNegative = z.number().nonnegative();

/** Everything a run is built from besides the corpus' vocabulary. Field names are the options' names. */
export const runOptionsSchema = z.object({
  stages: count,
  steps: count,
  /** M: microbatches per step. */
  microbatches: count,
  /** B: sequences per microbatch. */
  'batch-size': count,
  'n-layer': count,
  'n-head': count,
  'n-embd': count,
  /** T = block size. */
  'block-size': count,
  lr: nonNegative,
  'min-lr': nonNegative,
  warmup: z.number().int().nonnegative(),
  'weight-decay': nonNegative,
  beta2: nonNegative,
  'grad-clip': nonNegative,
  seed: z.number().int().nonnegative(),
  /** In-flight microbatches per stage (default: the run config's own, min(M, 8)). */
  slots: count.optional(),
  /** Default: run-<8 random hex digits>. */
  'run-id': z.string().min(1).optional(),
  /** Wire compression (src/coordinator/compress-option.ts): none (default), default, JSON or the compact form. */
  compress: z.string().optional(),
  /** How a stage's replicas combine gradients (docs/trust.md): sum (default, trusts them), trimmed-mean, centered-clip. */
  aggregation: trustSpecSchema.shape.aggregation.optional(),
  /** Fraction of contributions a validator recomputes (default 0). */
  'validation-rate': trustSpecSchema.shape.validationRate.optional(),
  /** Strikes that evict a peer (default 3). */
  strikes: trustSpecSchema.shape.strikes.optional(),
});

export type RunOptions = z.infer<typeof runOptionsSchema>;
export type RunOptionName = keyof RunOptions;
/** The options whose value is text. */
export const TEXT_RUN_OPTIONS = ['run-id', 'compress', 'aggregation'] as const;
/** The options whose value is a number (all but the text ones). */
export type NumericRunOption = Exclude<RunOptionName, (typeof TEXT_RUN_OPTIONS)[number]>;

export const RUN_DEFAULTS = {
  stages: 2,
  steps: 40,
  microbatches: 4,
  'batch-size': 4,
  'n-layer': 4,
  'n-head': 4,
  'n-embd': 64,
  'block-size': 64,
  lr: 3e-3,
  'min-lr': 3e-4,
  warmup: 5,
  'weight-decay': DEFAULT_OPTIMIZER.weightDecay,
  beta2: DEFAULT_OPTIMIZER.beta2,
  'grad-clip': DEFAULT_OPTIMIZER.gradClip,
  seed: 1337,
} as const satisfies Omit<RunOptions, 'slots' | 'run-id' | 'compress'>;

/** The room a coordinator opens and a peer joins when none is given. */
export const DEFAULT_ROOM = 'demo';

/** The options whose value is a number, in the order help texts list them. */
export const NUMERIC_RUN_OPTIONS: readonly NumericRunOption[] = [
  'stages',
  'steps',
  'microbatches',
  'batch-size',
  'n-layer',
  'n-head',
  'n-embd',
  'block-size',
  'lr',
  'min-lr',
  'warmup',
  'weight-decay',
  'beta2',
  'grad-clip',
  'seed',
  'slots',
  'validation-rate',
  'strikes',
];

/** The numeric options that take any real value; every other numeric option takes integers only. */
const REAL_OPTIONS: ReadonlySet<RunOptionName> = new Set<RunOptionName>(['lr', 'min-lr', 'weight-decay', 'beta2', 'grad-clip', 'validation-rate']);
const INTEGER_OPTIONS: ReadonlySet<RunOptionName> = new Set(NUMERIC_RUN_OPTIONS.filter((o) => !REAL_OPTIONS.has(o)));

export class RunBuildError extends Error {
  override name = 'RunBuildError';
}

/** How an option is called in an error message (the CLI: `--n-layer`). */
export type OptionLabel = (name: RunOptionName) => string;

/**
 * Options from text (CLI flags, URL parameters): `get` returns an option's raw value or undefined when not given.
 * Checks that numbers are numbers (and integers where they must be); ranges are buildRun's to check.
 */
export function readRunOptions(get: (name: RunOptionName) => string | undefined, label: OptionLabel = (n) => n): Partial<RunOptions> {
  const out: Partial<RunOptions> = {};
  for (const name of NUMERIC_RUN_OPTIONS) {
    const raw = get(name);
    if (raw === undefined) continue;
    const v = raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(v)) throw new RunBuildError(`${label(name)}: "${raw}" is not a number`);
    if (INTEGER_OPTIONS.has(name) && !Number.isInteger(v)) throw new RunBuildError(`${label(name)}: "${raw}" is not an integer`);
    out[name] = v;
  }
  const runId = get('run-id');
  if (runId !== undefined) out['run-id'] = runId;
  const compress = get('compress');
  if (compress !== undefined) out.compress = compress;
  const aggregation = get('aggregation');
  if (aggregation !== undefined) {
    const a = trustSpecSchema.shape.aggregation.safeParse(aggregation.trim());
    if (!a.success)
      throw new RunBuildError(`${label('aggregation')}: "${aggregation}" is not one of ${trustSpecSchema.shape.aggregation.options.join(', ')}`);
    out.aggregation = a.data;
  }
  return out;
}

/** run-<8 hex digits>, from the platform's CSPRNG (Node and browsers alike). */
export function newRunId(): string {
  const bytes = new Uint8Array(4);
  crypto.getRandomValues(bytes);
  return `run-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * What a run trains on: its tokenizer's vocabulary size and, for anything but the default dataset (tinyshakespeare,
 * character tokenizer), the DataSpec that names it (src/model/text-data.ts prepareTextData makes both).
 */
export interface RunDataset {
  vocab: number;
  data?: DataSpec;
}

/**
 * The run for these options (missing ones take RUN_DEFAULTS) over a dataset (a bare number: the default dataset's
 * vocabulary). Throws RunBuildError naming the option (through `label`) for a bad value or a model the run config
 * rejects, or a dataset too short for the run's window.
 */
export function buildRun(input: Partial<RunOptions>, dataset: number | RunDataset, label: OptionLabel = (n) => n): RunConfig {
  const { vocab, data } = typeof dataset === 'number' ? { vocab: dataset, data: undefined } : dataset;
  const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const parsed = runOptionsSchema.safeParse({ ...RUN_DEFAULTS, ...given });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const name = String(i.path[0]) as RunOptionName;
      const value = (given as Record<string, unknown>)[name];
      if (i.code === 'too_small') return `${label(name)}: ${String(value)} is ${i.inclusive ? 'below' : 'not above'} ${String(i.minimum)}`;
      return `${label(name)}: ${i.message}`;
    });
    throw new RunBuildError(issues.join('; '));
  }
  const o = parsed.data;
  const S = o.stages;
  const nLayer = o['n-layer'];
  if (S > nLayer) throw new RunBuildError(`${label('stages')} ${S} exceeds ${label('n-layer')} ${nLayer} (a stage holds at least one layer)`);
  const T = o['block-size'];
  // A batch row is T tokens and its T targets; validation windows too (an empty validation split is not used).
  if (data && (data.trainTokens < T + 1 || (data.valTokens > 0 && data.valTokens < T + 1)))
    throw new RunBuildError(
      `${label('block-size')} ${T}: "${data.name}" has ${data.trainTokens} train and ${data.valTokens} validation tokens, each split needs ${T + 1}`,
    );
  let compress;
  try {
    // `default` fits itself to the model (no bottleneck on one stage); an explicit spec is checked as given.
    compress = o.compress?.trim() === 'default' ? defaultCompressFor(o['n-embd'], S) : parseCompressOption(o.compress ?? 'none');
    checkCompressForModel(compress, o['n-embd'], S);
  } catch (e) {
    if (e instanceof CompressOptionError) throw new RunBuildError(`${label('compress')}: ${e.message}`);
    throw e;
  }
  try {
    return parseRunConfig({
      runId: o['run-id'] ?? newRunId(),
      model: { n_layer: nLayer, n_head: o['n-head'], n_embd: o['n-embd'], vocab_size: vocab, block_size: o['block-size'] },
      stages: evenStages(nLayer, S),
      B: o['batch-size'],
      T: o['block-size'],
      M: o.microbatches,
      steps: o.steps,
      schedule: { lr: o.lr, minLr: o['min-lr'], warmup: o.warmup, decaySteps: o.steps },
      optimizer: { ...DEFAULT_OPTIMIZER, lr: o.lr, weightDecay: o['weight-decay'], beta2: o.beta2, gradClip: o['grad-clip'] },
      seed: o.seed,
      ...(o.slots ? { slots: o.slots } : {}),
      // The default dataset leaves `data` out: the run config is then what it was before datasets existed.
      ...(data ? { data } : {}),
      // Today's wire leaves `compress` out: the run config is then what it was before compression existed.
      ...(isCompressNone(compress) ? {} : { compress }),
      // No trust option given: no `trust` section (TRUST_NONE: sum, no validators).
      ...(o.aggregation !== undefined || o['validation-rate'] !== undefined || o.strikes !== undefined
        ? {
            trust: {
              aggregation: o.aggregation ?? TRUST_NONE.aggregation,
              validationRate: o['validation-rate'] ?? TRUST_NONE.validationRate,
              strikes: o.strikes ?? TRUST_NONE.strikes,
            },
          }
        : {}),
    });
  } catch (e) {
    throw new RunBuildError((e as Error).message);
  }
}

/** Splits n_layer into `s` contiguous stages as evenly as possible (earlier stages get the extra layers). */
export function evenStages(nLayer: number, s: number): StageRange[] {
  if (!Number.isInteger(s) || s < 1 || s > nLayer) throw new Error(`evenStages: cannot split ${nLayer} layers into ${s} stages`);
  const out: StageRange[] = [];
  let at = 0;
  for (let i = 0; i < s; i++) {
    const n = Math.floor(nLayer / s) + (i < nLayer % s ? 1 : 0);
    out.push({ layerStart: at, layerEnd: at + n });
    at += n;
  }
  return out;
}
