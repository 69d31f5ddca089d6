// Splitting a model's layers into pipeline stages so that no peer's stage exceeds its memory budget (stage-memory.ts
// sizes a stage exactly as the Stage allocates it). Pure: the coordinator plans with it before anyone allocates.
//
// Fewest stages first (each boundary costs a network hop per microbatch): for S = 1, 2, ... the S largest budgets
// are placed (the largest on the last stage, which also holds the logits, the next on the first, the rest in order
// between), and a dynamic program over contiguous layer ranges picks the split that minimises the worst stage's
// share of its budget. With the adapters' storage binding limit known, stages are sized as they run there (a head
// whose wte is over one binding runs vocabulary-chunked), and a stage with a tensor bound whole over the limit is
// refused.
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
  /**
   * The adapters' maxStorageBufferBindingSize (the smallest of the peers'): no tensor a kernel binds whole may be
   * larger, and the head is sized vocabulary-chunked where wte is over it. Default: no limit, whole-vocabulary head.
   */
  maxBinding?: number;
  /**
   * Each peer's own binding limit (parallel to budgets; undefined: maxBinding): a stage is sized and checked as the
   * peer planned for it runs it (a larger binding may mean the whole-vocabulary head, the larger).
   */
  bindings?: readonly (number | undefined)[];
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

/** The largest tensor of a stage that a kernel binds whole. */
function bindingCulprit(m: StageMemory): string {
  return `${(m.largestBinding / 2 ** 20).toFixed(1)} MiB`;
}

export function partitionLayers(req: PartitionRequest): Partition {
  const { config, dims, slots } = req;
  const L = config.n_layer;
  const mem = (a: number, b: number, maxBindingBytes = req.maxBinding) =>
    stageMemory(config, { layerStart: a, layerEnd: b }, dims, { slots, bottleneck: req.bottleneck ?? null, align: req.align, maxBindingBytes });
  // One process trains microbatch after microbatch (one slot), on the smallest binding limit known.
  const known = (req.bindings ?? []).filter((b): b is number => b !== undefined);
  const modelBytes = stageMemory(config, { layerStart: 0, layerEnd: L }, dims, {
    slots: 1,
    bottleneck: req.bottleneck ?? null,
    align: req.align,
    maxBindingBytes: req.maxBinding ?? (known.length > 0 ? Math.min(...known) : undefined),
  }).processTotal;
  const budgets = req.budgets.map((b, i) => ({ b, i, bind: req.bindings?.[i] ?? req.maxBinding })).filter((x) => Number.isFinite(x.b) && x.b > 0);
  if (budgets.length === 0) return { ok: false, reason: 'no peer has a memory budget', modelBytes };
  budgets.sort((x, y) => y.b - x.b || x.i - y.i);
  const bindLimit = req.maxBinding ?? Number.POSITIVE_INFINITY;
  // Stage [a, b) as a peer with binding limit `bind` allocates it, or null when a tensor of it is over that limit.
  const cache = new Map<string, number | null>();
  const bytesOf = (a: number, b: number, bind = req.maxBinding): number | null => {
    const key = `${a},${b},${bind}`;
    let v = cache.get(key);
    if (v === undefined) {
      const m = mem(a, b, bind);
      v = m.largestBinding > (bind ?? Number.POSITIVE_INFINITY) ? null : m.peerTotal;
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
          const bytes = bytesOf(a, e, order[s].bind);
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
      bytes: ranges.map((r, s) => bytesOf(r.layerStart, r.layerEnd, order[s].bind) ?? 0),
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
