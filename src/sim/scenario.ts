// A simulator scenario from `tabswarm simulate` flags and/or a JSON config file (`--config FILE`; flags override
// the file), validated with zod. Defaults:
//   peers 100, stages 4, churnPerHour 0.1 (10% of the swarm leaves per hour), adversaries 0, compress 'default'
//   (the coordinator's DEFAULT_COMPRESS, fitted to the model), hours 1, seed 1;
//   model: the reference config (n_layer 4, n_head 4, n_embd 128, block 64, vocab 65: tinyshakespeare's characters)
//   with B 12 sequences per microbatch, as `tabswarm train` and the bench measure it;
//   M (microbatches per step): 2 per first-stage replica, 2 x ceil(peers / stages), at least 4, so every
//   first-stage replica owns work and can start its second microbatch's forward while the first is in flight (the
//   global batch grows with the swarm, as in SWARM / DiLoCo-style swarms).
import { z } from 'zod';
import { CompressOptionError } from '../coordinator/compress-option';
import { scenarioCompress } from './microbatch-cost';
import type { Scenario } from './types';

export class ScenarioError extends Error {
  override name = 'ScenarioError';
}

export const DEFAULT_MODEL: Scenario['model'] = { n_layer: 4, n_head: 4, n_embd: 128, block_size: 64, vocab_size: 65 };

export const SCENARIO_DEFAULTS = {
  peers: 100,
  stages: 4,
  churnPerHour: 0.1,
  adversaries: 0,
  compress: 'default',
  hours: 1,
  seed: 1,
  B: 12,
} as const;

/**
 * Members the coordinator can admit at most: one signed swarm-members / step-begin (60 KiB, src/coordinator/
 * membership-budget.ts) names about a thousand 32-character ids; peers past it wait on standby.
 */
export const ADMITTED_AT_MOST = 1024;

/** M when the scenario does not give one: two microbatches per first-stage replica the coordinator can admit. */
export function defaultMicrobatches(peers: number, stages: number): number {
  return Math.max(4, 2 * Math.ceil(Math.min(peers, ADMITTED_AT_MOST) / stages));
}

const posInt = z.number().int().positive();

const modelObject = z
  .object({
    n_layer: posInt.max(1024),
    n_head: posInt.max(1024),
    n_embd: posInt.max(65536),
    block_size: posInt.max(1 << 20),
    vocab_size: z
      .number()
      .int()
      .min(2)
      .max(1 << 24),
  })
  .strict();
const modelSchema = modelObject.refine((m) => m.n_embd % m.n_head === 0, { message: 'n_embd must be a multiple of n_head', path: ['n_embd'] });

/** A config file: every field optional (defaults fill the rest), unknown fields refused (a typo is not ignored). */
const configSchema = z
  .object({
    peers: posInt.max(1_000_000),
    stages: posInt,
    churnPerHour: z.number().min(0).max(100),
    adversaries: z.number().min(0).lt(1),
    compress: z.string().min(1),
    hours: z.number().gt(0).max(1000),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    model: modelObject.partial(),
    B: posInt.max(65536),
    M: posInt.max(10_000_000),
    ownersBySpeed: z.boolean(),
  })
  .partial()
  .strict();
export type ScenarioConfig = z.infer<typeof configSchema>;

/** The flag of each scenario field, for error messages. */
const FLAG_OF: Readonly<Record<string, string>> = {
  peers: '--peers',
  stages: '--stages',
  churnPerHour: '--churn-per-hour',
  adversaries: '--adversaries',
  compress: '--compress',
  hours: '--hours',
  seed: '--seed',
  B: '--batch-size',
  M: '--microbatches',
};

function issues(e: z.ZodError, where: string): string {
  return e.issues
    .map((i) => {
      const path = i.path.map(String).join('.');
      const flag = FLAG_OF[path];
      return `${where}${path ? `${path}${flag ? ` (${flag})` : ''}: ` : ''}${i.message}`;
    })
    .join('; ');
}

/** The flags that set scenario fields (node:util parseArgs options), the config file's key for each. */
export const SCENARIO_FLAGS = {
  peers: 'peers',
  stages: 'stages',
  'churn-per-hour': 'churnPerHour',
  adversaries: 'adversaries',
  hours: 'hours',
  seed: 'seed',
  'batch-size': 'B',
  microbatches: 'M',
} as const satisfies Record<string, keyof ScenarioConfig>;

/** parseArgs options for the scenario's flags (numbers arrive as strings and are checked here). */
export const scenarioArgOptions = {
  ...Object.fromEntries(Object.keys(SCENARIO_FLAGS).map((k) => [k, { type: 'string' as const }])),
  compress: { type: 'string' as const },
  config: { type: 'string' as const },
};

/** Flag values (strings as parseArgs gives them) -> config fields; a non-number names its flag. */
export function configFromFlags(values: Readonly<Record<string, unknown>>): ScenarioConfig {
  const out: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(SCENARIO_FLAGS)) {
    const raw = values[flag];
    if (raw === undefined) continue;
    const v = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
    if (!Number.isFinite(v)) throw new ScenarioError(`--${flag}: "${String(raw)}" is not a number`);
    out[key] = v;
  }
  if (typeof values.compress === 'string') out.compress = values.compress;
  const r = configSchema.safeParse(out);
  if (!r.success) throw new ScenarioError(issues(r.error, ''));
  return r.data;
}

/** A config file's text -> its fields (JSON, the Scenario's keys; `model` may give some fields only). */
export function configFromJson(text: string, file: string): ScenarioConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ScenarioError(issues(r.error, `${file}: `));
  return r.data;
}

/** The scenario: defaults, then the file's fields, then the flags'; checked as a whole (stages vs layers, compress). */
export function buildScenario(file: ScenarioConfig, flags: ScenarioConfig): Scenario {
  const merged = { ...SCENARIO_DEFAULTS, ...file, ...flags };
  const model = modelSchema.safeParse({ ...DEFAULT_MODEL, ...file.model, ...flags.model });
  if (!model.success) throw new ScenarioError(issues(model.error, 'model.'));
  const m = model.data;
  if (merged.stages > m.n_layer)
    throw new ScenarioError(`stages (--stages): ${merged.stages} stages need at least as many layers, the model has n_layer ${m.n_layer}`);
  const scenario: Scenario = {
    peers: merged.peers,
    stages: merged.stages,
    churnPerHour: merged.churnPerHour,
    adversaries: merged.adversaries,
    compress: merged.compress,
    hours: merged.hours,
    seed: merged.seed,
    model: m,
    B: merged.B,
    M: merged.M ?? defaultMicrobatches(merged.peers, merged.stages),
    ...(merged.ownersBySpeed ? { ownersBySpeed: true } : {}),
  };
  try {
    scenarioCompress(scenario);
  } catch (e) {
    if (e instanceof CompressOptionError) throw new ScenarioError(`compress (--compress): ${e.message}`);
    throw e;
  }
  return scenario;
}

/** Flags (and the config file they may name, read by `readFile`) -> the scenario. */
export function readScenario(values: Readonly<Record<string, unknown>>, readFile: (path: string) => string): Scenario {
  const flags = configFromFlags(values);
  const path = typeof values.config === 'string' ? values.config : undefined;
  let file: ScenarioConfig = {};
  if (path !== undefined) {
    let text: string;
    try {
      text = readFile(path);
    } catch (e) {
      throw new ScenarioError(`--config: cannot read ${path}: ${(e as Error).message}`);
    }
    file = configFromJson(text, path);
  }
  return buildScenario(file, flags);
}
