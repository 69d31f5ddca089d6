// Matmul autotuner: times every variant on this adapter for each shape and caches the winner per
// (adapter key, shape). `matmul()` (src/gpu/ops/matmul.ts) consults the table synchronously; shapes never tuned use
// its per-adapter default. The table exports to / imports from JSON (the CLI keeps it in a file); the browser keeps
// it in IndexedDB per adapter identity and kernel version (src/gpu/tuning-cache.ts).
import {
  availableVariants,
  MATMUL_VARIANTS,
  matmulChoiceTable,
  matmulShapeKey,
  matmulWith,
  variantKernel,
  type MatmulArgs,
  type MatmulCase,
} from './ops/matmul';
import type { Runtime } from './runtime';
import type { Tensor } from './tensor';

/** A matmul problem the tuner times: the same description the launcher keys its choices by. */
export type MatmulShape = MatmulCase;

interface Entry {
  variant: string;
  timingsMs: Record<string, number>;
}

/** Timings per adapter key and shape key (the variant choice itself lives in matmul's choice table). */
const timingTables = new Map<string, Map<string, Entry>>();

function timings(rt: Runtime): Map<string, Entry> {
  const key = rt.handle.report.key;
  let t = timingTables.get(key);
  if (!t) {
    t = new Map();
    timingTables.set(key, t);
  }
  return t;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Wall-clock milliseconds of `run()` (one or more recorded launches) per rep, each timed from recording to the
 * GPU finishing (`flush`), after one warm-up run. Dawn's Node binding busy-polls while a flush is awaited, which on
 * a 2-core CPU adapter steals a core from the driver's threads; so each rep sleeps for most of the previous best
 * time before awaiting. The result is still a real end-to-end time, just without the poller in the way.
 */
export async function timeGpu(rt: Runtime, run: () => void, reps: number): Promise<number[]> {
  run();
  await rt.flush();
  const times: number[] = [];
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    rt.submit();
    if (best > 4 && best < Infinity) await sleep(best * 0.8);
    await rt.flush();
    const t = performance.now() - t0;
    times.push(t);
    best = Math.min(best, t);
  }
  return times;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Random-ish finite data without a host RNG dependency (values in [-1, 1)). */
function filler(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** Operand tensors for a shape (caller releases them). */
export function matmulOperands(rt: Runtime, s: MatmulShape, seed = 1): { args: MatmulArgs; tensors: Tensor[] } {
  const a = rt.upload(filler(s.M * s.K, seed), s.transA ? [s.K, s.M] : [s.M, s.K], 'tune a');
  const b = rt.upload(filler(s.K * s.N, seed + 1), s.transB ? [s.N, s.K] : [s.K, s.N], 'tune b');
  const out = rt.upload(filler(s.M * s.N, seed + 2), [s.M, s.N], 'tune out');
  const bias = s.bias ? rt.upload(filler(s.N, seed + 3), [s.N], 'tune bias') : undefined;
  const args: MatmulArgs = { out, a, b, bias, M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB, accumulate: s.accumulate };
  return { args, tensors: [a, b, out, ...(bias ? [bias] : [])] };
}

/** Milliseconds of one run of variant `v` (recorded, submitted, awaited). */
async function timeOnce(rt: Runtime, v: string, args: MatmulArgs): Promise<number> {
  const t0 = performance.now();
  matmulWith(rt, v, args);
  await rt.flush();
  return performance.now() - t0;
}

/** Times every applicable variant on this adapter for each shape and caches the winner per (adapter key, shape);
 *  idempotent: shapes already chosen (tuned or loaded) are skipped. Each variant runs once untimed first (llvmpipe
 *  compiles a pipeline at its first dispatch), then once timed: one over 4x slower than the best so far is recorded
 *  with that time and not timed further; the others take the fastest of `reps` runs (other processes only ever add
 *  time, so the minimum is the estimate that noise moves least). The fastest three are then timed again, interleaved,
 *  for `reps` rounds, so that a burst of load during one variant's turn cannot decide the choice. Returns how many
 *  shapes it timed. */
export async function tuneMatmul(
  rt: Runtime,
  shapes: MatmulShape[],
  opts: { reps?: number; log?: (s: string) => void; variants?: readonly string[] } = {},
): Promise<number> {
  const reps = opts.reps ?? 5;
  let timed = 0;
  const table = timings(rt);
  const choices = matmulChoiceTable(rt);
  for (const s of shapes) {
    const key = matmulShapeKey(s);
    if (table.has(key) && choices.has(key)) continue;
    timed++;
    const { args, tensors } = matmulOperands(rt, s);
    const result: Record<string, number> = {};
    let best = Infinity;
    for (const v of opts.variants ?? availableVariants(rt)) {
      await rt.prepare(variantKernel(v, s, rt).kernel);
      matmulWith(rt, v, args);
      await rt.flush();
      const first = await timeOnce(rt, v, args);
      const ms = first > 4 * best ? first : Math.min(first, ...(await timeGpu(rt, () => matmulWith(rt, v, args), reps - 1)));
      result[v] = ms;
      best = Math.min(best, ms);
    }
    const finalists = Object.keys(result)
      .sort((x, y) => result[x] - result[y])
      .slice(0, 3);
    for (let round = 0; round < reps && finalists.length > 1; round++) {
      for (const v of finalists) result[v] = Math.min(result[v], await timeOnce(rt, v, args));
    }
    const bestVariant = finalists.reduce((x, y) => (result[y] < result[x] ? y : x));
    for (const t of tensors) rt.release(t);
    table.set(key, { variant: bestVariant, timingsMs: result });
    choices.set(key, bestVariant);
    const flops = 2 * s.M * s.N * s.K;
    opts.log?.(
      `[tune] ${rt.handle.report.key} ${key}: ${bestVariant} (` +
        Object.entries(result)
          .map(([v, ms]) => `${v} ${(flops / ms / 1e6).toFixed(2)}`)
          .join(', ') +
        ' GFLOP/s)',
    );
  }
  return timed;
}

/** The choice table (for the bench output and logs): [{shape key, variant, timings per variant}]. */
export function matmulChoices(rt: Runtime): Array<{ shape: string; variant: string; timingsMs: Record<string, number> }> {
  const table = timings(rt);
  return [...matmulChoiceTable(rt)].map(([shape, variant]) => ({ shape, variant, timingsMs: { ...(table.get(shape)?.timingsMs ?? {}) } }));
}

interface TuningFile {
  adapter: string;
  choices: Array<{ shape: string; variant: string; timingsMs: Record<string, number> }>;
}

/** The choice table as JSON, tagged with the adapter key. */
export function exportTuning(rt: Runtime): string {
  const file: TuningFile = { adapter: rt.handle.report.key, choices: matmulChoices(rt) };
  return JSON.stringify(file);
}

/** Loads a table saved by exportTuning. Returns false (and changes nothing) if it was made on another adapter
 *  or is malformed; unknown variants are skipped. */
export function importTuning(rt: Runtime, json: string): boolean {
  let file: TuningFile;
  try {
    file = JSON.parse(json) as TuningFile;
  } catch {
    return false;
  }
  if (!file || file.adapter !== rt.handle.report.key || !Array.isArray(file.choices)) return false;
  applyTuning(rt, file.choices);
  return true;
}

/** Adopts saved choices as if tuned here (tuneMatmul then skips their shapes); unknown variants are skipped.
 *  Returns how many it adopted. */
export function applyTuning(rt: Runtime, saved: ReadonlyArray<{ shape: string; variant: string; timingsMs?: Record<string, number> }>): number {
  const table = timings(rt);
  const choices = matmulChoiceTable(rt);
  let n = 0;
  for (const c of saved) {
    if (typeof c?.shape !== 'string' || !MATMUL_VARIANTS.includes(c.variant)) continue;
    choices.set(c.shape, c.variant);
    table.set(c.shape, { variant: c.variant, timingsMs: { ...(c.timingsMs ?? {}) } });
    n++;
  }
  return n;
}
