// Where a joining peer goes (docs/swarm.md, Membership): fill empty stages first (lowest index first), otherwise the
// stage with the least compute per layer (sum of its replicas' measured throughput / its layer count). Pure.

export interface StageLoad {
  /** Layers the stage holds (> 0). */
  layers: number;
  /** Measured throughput of each live replica (tokens/s of the join benchmark; any consistent unit). */
  throughputs: number[];
}

/** Compute per layer of a stage: 0 for an empty stage. */
export function computePerLayer(s: StageLoad): number {
  if (!(s.layers > 0)) throw new Error(`assignment: a stage must hold at least one layer, got ${s.layers}`);
  let sum = 0;
  for (const t of s.throughputs) sum += Math.max(0, Number.isFinite(t) ? t : 0);
  return sum / s.layers;
}

/**
 * The stage index a new peer should take. Ties go to the lower index. A stage with `maxReplicas` peers or more (the
 * protocol's cap on a stage's members) takes nobody while another has room: a peer piled there would only wait.
 * `fits[i]` false: the peer's memory cannot hold stage i (src/coordinator/stage-budget.ts); it is never chosen.
 */
export function assignStage(stages: readonly StageLoad[], maxReplicas = Number.POSITIVE_INFINITY, fits?: readonly boolean[]): number {
  if (stages.length === 0) throw new Error('assignment: no stages');
  const ok = (i: number) => fits?.[i] ?? true;
  if (!stages.some((_, i) => ok(i))) throw new Error('assignment: the peer fits no stage');
  const empty = stages.findIndex((s, i) => s.throughputs.length === 0 && ok(i));
  if (empty >= 0) return empty;
  const open = stages.some((s, i) => s.throughputs.length < maxReplicas && ok(i));
  let best = -1;
  let bestLoad = Number.POSITIVE_INFINITY;
  for (let i = 0; i < stages.length; i++) {
    if (!ok(i)) continue;
    if (open && stages[i].throughputs.length >= maxReplicas) continue;
    const load = computePerLayer(stages[i]);
    if (best < 0 || load < bestLoad) {
      best = i;
      bestLoad = load;
    }
  }
  return best;
}
