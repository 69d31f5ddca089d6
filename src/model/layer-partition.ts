// Splitting a model's layers into pipeline stages so that no peer's stage exceeds its memory budget (stage-memory.ts
// sizes a stage exactly as the Stage allocates it). Pure: the coordinator plans with it before anyone allocates.
//
// Fewest stages first (each boundary costs a network hop per microbatch): for S = 1, 2, ... the S largest budgets
// are placed (the largest on the last stage, which also holds the logits, the next on the first, the rest in order
// between), and a dynamic program over contiguous layer ranges picks the split that minimises the worst stage's
// share of its budget. Also refused: a stage with a tensor over the storage binding limit.
import type { BottleneckConfig } from './bottleneck-config';
import type { GPTConfig } from './config';
import type { MicroDims } from './stage';
import { stageMemory, type StageMemory } from './stage-memory';
import type { StageRange } from './stage-role';

export interface PartitionRequest {
  config: GPTConfig;
  dims: MicroDims;
  /** In-flight microbatches per stage (the run's slots). */
  slots: number;
  bottleneck?: BottleneckConfig | null;
  /** Elements per view alignment of the flat store (default 64). */
  align?: number;
  /** Each peer's training-memory budget in bytes. */
  budgets: readonly number[];
  /** The adapter's maxStorageBufferBindingSize: no single tensor may be larger (default: no limit). */
  maxBinding?: number;
}

export type Partition =
  | {
      ok: true;
      ranges: StageRange[];
      /** Training bytes of each stage. */
      bytes: number[];
      /** The index (into budgets) of the peer each stage is planned for. */
      peers: number[];
      /** The whole model's training bytes in one process (for comparison). */
      modelBytes: number;
    }
  | { ok: false; reason: string; modelBytes: number };

/** The largest tensor of a stage and what it is (the flat store's four buffers are one tensor each). */
function bindingCulprit(m: StageMemory): string {
  const mib = `${(m.largestTensor / 2 ** 20).toFixed(1)} MiB`;
  return m.largestTensor === m.store / 4 ? `${mib}: its flat parameter store` : mib;
}

export function partitionLayers(req: PartitionRequest): Partition {
  const { config, dims, slots } = req;
  const L = config.n_layer;
  const mem = (a: number, b: number) =>
    stageMemory(config, { layerStart: a, layerEnd: b }, dims, { slots, bottleneck: req.bottleneck ?? null, align: req.align });
  const modelBytes = mem(0, L).total;
  const budgets = req.budgets.map((b, i) => ({ b, i })).filter((x) => Number.isFinite(x.b) && x.b > 0);
  if (budgets.length === 0) return { ok: false, reason: 'no peer has a memory budget', modelBytes };
  budgets.sort((x, y) => y.b - x.b || x.i - y.i);
  const bindLimit = req.maxBinding ?? Number.POSITIVE_INFINITY;
  // fits[a][b]: stage [a, b) as allocated, or null when a tensor of it is over the binding limit.
  const cache = new Map<number, number | null>();
  const bytesOf = (a: number, b: number): number | null => {
    const key = a * (L + 1) + b;
    let v = cache.get(key);
    if (v === undefined) {
      const m = mem(a, b);
      v = m.largestTensor > bindLimit ? null : m.total;
      cache.set(key, v);
    }
    return v;
  };
  let smallestMiss = Number.POSITIVE_INFINITY;
  for (let S = 1; S <= Math.min(budgets.length, L); S++) {
    const top = budgets.slice(0, S);
    // Positions: last stage <- largest, first <- second largest, middles <- the rest in descending order.
    const order = S === 1 ? [top[0]] : [top[1], ...top.slice(2), top[0]];
    // best[s][e]: the smallest worst ratio (bytes / budget) over stages 0..s covering layers [0, e).
    const best: number[][] = Array.from({ length: S }, () => new Array<number>(L + 1).fill(Number.POSITIVE_INFINITY));
    const from: number[][] = Array.from({ length: S }, () => new Array<number>(L + 1).fill(-1));
    for (let s = 0; s < S; s++) {
      for (let e = s + 1; e <= L - (S - 1 - s); e++) {
        for (let a = s; a < e; a++) {
          const prev = s === 0 ? (a === 0 ? 0 : Number.POSITIVE_INFINITY) : best[s - 1][a];
          if (!Number.isFinite(prev)) continue;
          const bytes = bytesOf(a, e);
          if (bytes === null) continue;
          const r = bytes / order[s].b;
          if (r > 1) {
            smallestMiss = Math.min(smallestMiss, bytes);
            continue;
          }
          const worst = Math.max(prev, r);
          if (worst < best[s][e]) {
            best[s][e] = worst;
            from[s][e] = a;
          }
        }
      }
    }
    if (!Number.isFinite(best[S - 1][L])) continue;
    const ranges: StageRange[] = [];
    let e = L;
    for (let s = S - 1; s >= 0; s--) {
      const a = from[s][e];
      ranges.unshift({ layerStart: a, layerEnd: e });
      e = a;
    }
    return {
      ok: true,
      ranges,
      bytes: ranges.map((r) => bytesOf(r.layerStart, r.layerEnd) ?? 0),
      peers: order.map((x) => x.i),
      modelBytes,
    };
  }
  const mb = (x: number) => `${(x / 2 ** 20).toFixed(1)} MiB`;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const bindsFirst = range(L).some((e) => bytesOf(0, e + 1) !== null);
  const bindsLast = range(L).some((a) => bytesOf(a, L) !== null);
  const oneLayer = Math.min(...range(L).map((l) => bytesOf(l, l + 1) ?? Number.POSITIVE_INFINITY));
  const why =
    !bindsFirst || !bindsLast
      ? `the ${!bindsFirst ? 'first' : 'last'} stage has a tensor (${bindingCulprit(mem(!bindsFirst ? 0 : L - 1, !bindsFirst ? 1 : L))}) over the ${mb(bindLimit)} storage binding limit`
      : `the ${budgets.length} budget(s) (largest ${mb(budgets[0].b)}) cannot hold the model's ${L} layers split into at most ` +
        `${Math.min(budgets.length, L)} stages (smallest stage that did not fit: ${mb(Number.isFinite(smallestMiss) ? smallestMiss : oneLayer)})`;
  return { ok: false, reason: `the swarm is too small for this model (${mb(modelBytes)} to train in one place): ${why}`, modelBytes };
}
