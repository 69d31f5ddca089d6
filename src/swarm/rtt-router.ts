// Routing by observed round trips (docs/resilience.md, "Stragglers and frozen peers"). A stage sends each
// microbatch's activations to one next-stage replica (SWARM stochastic wiring). The join benchmark's speeds say
// little about a peer once it trains (another tab in the foreground, a thermally throttled laptop, a long route): the
// time from activations out to their gradient back says everything downstream of it. Once measured, a candidate
// weighs 1 / EWMA(round trip) x 1 / (1 + my queue there); before that, the coordinator's speed. A candidate that
// holds a microbatch longer than its average counts the wait so far as its round trip: a frozen replica stops
// attracting work within the same step. The choice itself stays deterministic given the weights: u comes from
// (seed, step, attempt, mb, stage), so a restarted attempt with the same weights routes the same way.

/** Smoothing of the round-trip average: each new sample weighs this much. */
export const RTT_ALPHA = 0.3;

/**
 * Share of the total weight every candidate keeps at least (split evenly): a replica whose average was inflated
 * (a slow first microbatch while it compiled its pipelines, a hiccup) still gets some work, so it is measured again
 * and can win its share back; without a floor one bad sample starves it for the rest of the run.
 */
export const RTT_EXPLORE = 0.2;

export class RttRouter {
  private readonly ewma = new Map<string, number>();
  /** Round trips seen per peer: the first one is its warm-up (pipeline compiles) and does not count. */
  private readonly samples = new Map<string, number>();
  /** Microbatches of the current attempt whose activations are out: where and since when. */
  private readonly out = new Map<number, { peer: string; at: number }>();

  /** `warmup`: round trips per peer that do not count (its first microbatches include its pipeline compiles). */
  constructor(
    private readonly alpha = RTT_ALPHA,
    private readonly warmup = 1,
  ) {}

  /** A new attempt: nothing is in flight (the averages stay). */
  begin(): void {
    this.out.clear();
  }

  /** Activations of microbatch `mb` went to `peer` at `now` (ms). */
  sent(peer: string, mb: number, now: number): void {
    this.out.set(mb, { peer, at: now });
  }

  /** The gradient of microbatch `mb` came back from `peer` at `now`: one round-trip sample. Returns it (or null). */
  back(peer: string, mb: number, now: number): number | null {
    const o = this.out.get(mb);
    if (!o || o.peer !== peer) return null;
    this.out.delete(mb);
    const rtt = Math.max(0, now - o.at);
    const n = (this.samples.get(peer) ?? 0) + 1;
    this.samples.set(peer, n);
    if (n <= this.warmup) return rtt;
    const prev = this.ewma.get(peer);
    this.ewma.set(peer, prev === undefined ? rtt : prev + this.alpha * (rtt - prev));
    return rtt;
  }

  /** The averaged round trip to `peer`, ms (undefined: not measured yet). */
  rtt(peer: string): number | undefined {
    return this.ewma.get(peer);
  }

  /** How long the oldest microbatch still out at `peer` has waited, ms (0: none out). */
  private waiting(peer: string, now: number): number {
    let age = 0;
    for (const o of this.out.values()) if (o.peer === peer) age = Math.max(age, now - o.at);
    return age;
  }

  /**
   * The routing weight of each candidate. Measured: 1 / max(EWMA, oldest wait there) / (1 + queue). A candidate not
   * measured yet gets the round trip its speed implies relative to the measured ones (their mean of rtt x speed over
   * its speed); when none is measured, the weights are speed / (1 + queue), as before any measurement.
   */
  weights(candidates: readonly string[], speed: (peer: string) => number, queue: (peer: string) => number, now: number): number[] {
    const sp = (p: string) => Math.max(1e-9, speed(p));
    const measured = candidates.filter((p) => this.ewma.has(p));
    if (measured.length === 0) return candidates.map((p) => sp(p) / (1 + queue(p)));
    let work = 0; // mean of rtt x speed over the measured: the round trip per unit of speed
    for (const p of measured) work += (this.ewma.get(p) ?? 0) * sp(p);
    work /= measured.length;
    const w = candidates.map((p) => {
      const base = this.ewma.get(p) ?? work / sp(p);
      const rtt = Math.max(base, this.waiting(p, now), 1e-3);
      return 1 / rtt / (1 + queue(p));
    });
    const floor = (RTT_EXPLORE / candidates.length) * w.reduce((a, b) => a + b, 0);
    return w.map((x) => Math.max(x, floor));
  }
}

/** The candidate `u` (uniform in [0, 1)) falls on when the weights are laid end to end. */
export function pickWeighted<T>(candidates: readonly T[], weights: readonly number[], u: number): T | undefined {
  if (candidates.length === 0) return undefined;
  const w = weights.map((x) => (Number.isFinite(x) && x > 0 ? x : 0));
  const total = w.reduce((a, b) => a + b, 0);
  if (total <= 0) return candidates[Math.min(candidates.length - 1, Math.floor(u * candidates.length))];
  let r = u * total;
  for (let i = 0; i < candidates.length; i++) {
    r -= w[i];
    if (r < 0) return candidates[i];
  }
  return candidates[candidates.length - 1];
}
