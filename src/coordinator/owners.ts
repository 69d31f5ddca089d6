// Who owns which microbatch of a step (step-begin `owners`): in proportion to each first-stage replica's throughput
// (per-step mode), so a slow replica does not hold the whole step up by owning as many microbatches as a fast one.
// Deterministic (every replica reads owners from step-begin; no RNG needed). Pure.

/**
 * How many of `M` microbatches each of the weights gets: largest-remainder apportionment (ties to the lower index).
 * A weight that is not a finite positive number (an unknown or broken measurement) counts as the smallest valid
 * one, or all count equally when none is valid. When M >= weights.length every replica gets at least one: a lane of
 * local-steps mode with no microbatch would apply an update from zero gradients.
 */
export function apportion(M: number, weights: readonly number[]): number[] {
  const n = weights.length;
  if (n === 0) throw new Error('owners: no first-stage replica');
  if (!Number.isInteger(M) || M < 0) throw new Error(`owners: M must be a non-negative integer, got ${M}`);
  const valid = weights.filter((w) => Number.isFinite(w) && w > 0);
  const floor = valid.length ? Math.min(...valid) : 1;
  const w = weights.map((x) => (Number.isFinite(x) && x > 0 ? x : floor));
  const total = w.reduce((a, b) => a + b, 0);
  const quotas = w.map((x) => (M * x) / total);
  const counts = quotas.map((q) => Math.floor(q));
  let left = M - counts.reduce((a, b) => a + b, 0);
  const byRemainder = quotas.map((q, i) => ({ i, r: q - Math.floor(q) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % n, left--) counts[byRemainder[k].i]++;
  if (M >= n) {
    // Take the missing ones from the largest counts (the lower index first on ties).
    for (let i = 0; i < n; i++) {
      if (counts[i] > 0) continue;
      let from = 0;
      for (let j = 1; j < n; j++) if (counts[j] > counts[from]) from = j;
      counts[from]--;
      counts[i]++;
    }
  }
  return counts;
}

/**
 * The owner of each microbatch: `replicas` apportioned by `weights`, interleaved by smooth weighted round robin
 * (each replica's microbatches spread over the step instead of in one run, so every replica starts at once). Equal
 * weights give plain round robin, owners[k] = replicas[k % n].
 */
export function ownersOf<T>(M: number, replicas: readonly T[], weights: readonly number[]): T[] {
  if (replicas.length !== weights.length) throw new Error(`owners: ${replicas.length} replicas but ${weights.length} weights`);
  const counts = apportion(M, weights);
  const current = counts.map(() => 0);
  const owners: T[] = [];
  for (let k = 0; k < M; k++) {
    let best = -1;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] === 0) continue;
      current[i] += counts[i];
      if (best < 0 || current[i] > current[best]) best = i;
    }
    current[best] -= M;
    owners.push(replicas[best]);
  }
  return owners;
}
