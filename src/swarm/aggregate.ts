// Robust aggregation of one stage's replica gradients (docs/trust.md "Robust aggregation"). Pure and deterministic:
// float64 throughout, fixed orders, so replicas that hold the same inputs end with the same bits.
//
// Input: one vector per rank (null: nothing from that rank — it ran no microbatch, or its vector was refused before
// this point). Each vector is a replica's stage gradient divided by its microbatch count (its mean per-microbatch
// gradient). Steps:
//   1. a vector with a non-finite value is excluded ('non-finite');
//   2. a vector whose L2 norm exceeds normFactor x the median norm of the remaining ones is excluded ('norm');
//   3. the rest are combined coordinate-wise: the trimmed mean (drop `trim` values at each end of every coordinate),
//      or CenteredClip (Karimireddy, He, Jaggi 2021): v <- v + mean_i clip(x_i - v, tau), from the coordinate-wise
//      median, `clipIters` times, where clip(d, tau) = d * min(1, tau / |d|).
// The caller multiplies the result by M (microbatches per step) to get the step's gradient: with every replica
// honest and equal counts the trimmed mean with trim 0 (or CenteredClip that clips nothing) is the mean, and M x the
// mean is the sum the trusting all-reduce would give, within float rounding.

export type RobustMode = 'trimmed-mean' | 'centered-clip';

export interface AggregateOptions {
  mode: RobustMode;
  /** Norm outlier threshold (x the median norm); default DEFAULT_NORM_FACTOR. */
  normFactor?: number;
  /** trimmed-mean: values dropped at each end of every coordinate; default floor((n - 1) / 3) of n ranks. */
  trim?: number;
  /** centered-clip: clipping radius; default DEFAULT_TAU_FACTOR x the median distance to the coordinate-wise median. */
  clipTau?: number;
  /** centered-clip: iterations; default DEFAULT_CLIP_ITERS. */
  clipIters?: number;
}

/** A vector more than 4x the median norm is an outlier: honest replicas' norms differ by far less. */
export const DEFAULT_NORM_FACTOR = 4;
/** CenteredClip's default radius: twice the median distance, so honest vectors (whose distances concentrate) are not clipped. */
export const DEFAULT_TAU_FACTOR = 2;
export const DEFAULT_CLIP_ITERS = 3;

export interface Exclusion {
  rank: number;
  reason: string;
}

export interface AggregateResult {
  /** The aggregate (length of the vectors); all zeros when no vector is left. */
  result: Float64Array;
  /** Ranks whose vectors were combined, ascending. */
  used: number[];
  /** Ranks excluded here (non-finite, norm outlier), ascending. */
  excluded: Exclusion[];
}

/** Median of a non-empty list (the mean of the two middle values for an even count). Does not modify `xs`. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Sum of squares of `x` in float64, in index order. */
export function sumOfSquares(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** Euclidean norm of `x` (float64). */
export function norm(x: ArrayLike<number>): number {
  return Math.sqrt(sumOfSquares(x));
}

function allFinite(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
}

/** Sorts the first k entries of `a` ascending in place (insertion sort: k is a replica count, small). */
function sortPrefix(a: Float64Array, k: number): void {
  for (let i = 1; i < k; i++) {
    const x = a[i];
    let j = i - 1;
    while (j >= 0 && a[j] > x) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = x;
  }
}

export function trimmedMean(xs: readonly ArrayLike<number>[], trim: number, n: number): Float64Array {
  const k = xs.length;
  const out = new Float64Array(n);
  if (k === 0) return out;
  const t = Math.min(trim, Math.floor((k - 1) / 2));
  const col = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < k; r++) col[r] = xs[r][i];
    sortPrefix(col, k);
    let s = 0;
    for (let r = t; r < k - t; r++) s += col[r];
    out[i] = s / (k - 2 * t);
  }
  return out;
}

export function coordinateMedian(xs: readonly ArrayLike<number>[], n: number): Float64Array {
  const k = xs.length;
  const out = new Float64Array(n);
  if (k === 0) return out;
  const col = new Float64Array(k);
  const h = k >> 1;
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < k; r++) col[r] = xs[r][i];
    sortPrefix(col, k);
    out[i] = k % 2 === 1 ? col[h] : (col[h - 1] + col[h]) / 2;
  }
  return out;
}

function distance(x: ArrayLike<number>, v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) {
    const d = x[i] - v[i];
    s += d * d;
  }
  return Math.sqrt(s);
}

/** CenteredClip from the coordinate-wise median; tau undefined = DEFAULT_TAU_FACTOR x the median distance to it. */
export function centeredClip(xs: readonly ArrayLike<number>[], n: number, tau: number | undefined, iters: number): Float64Array {
  const k = xs.length;
  const v = coordinateMedian(xs, n);
  if (k === 0) return v;
  const radius = tau ?? DEFAULT_TAU_FACTOR * median(xs.map((x) => distance(x, v)));
  const step = new Float64Array(n);
  for (let it = 0; it < iters; it++) {
    step.fill(0);
    for (let r = 0; r < k; r++) {
      const x = xs[r];
      const d = distance(x, v);
      const c = d > radius ? radius / d : 1;
      for (let i = 0; i < n; i++) step[i] += (x[i] - v[i]) * c;
    }
    for (let i = 0; i < n; i++) v[i] += step[i] / k;
  }
  return v;
}

/** Robust aggregate of the ranks' vectors (all of length `n`; null = nothing from that rank). */
export function aggregate(vectors: readonly (ArrayLike<number> | null)[], n: number, opts: AggregateOptions): AggregateResult {
  const excluded: Exclusion[] = [];
  const finite: number[] = [];
  vectors.forEach((x, r) => {
    if (!x) return;
    if (x.length !== n) throw new Error(`aggregate: rank ${r} has ${x.length} values, expected ${n}`);
    if (allFinite(x)) finite.push(r);
    else excluded.push({ rank: r, reason: 'non-finite' });
  });
  const norms = new Map(finite.map((r) => [r, norm(vectors[r] as ArrayLike<number>)] as const));
  const factor = opts.normFactor ?? DEFAULT_NORM_FACTOR;
  const med = finite.length > 0 ? median(finite.map((r) => norms.get(r) ?? 0)) : 0;
  const used: number[] = [];
  for (const r of finite) {
    const nr = norms.get(r) ?? 0;
    if (nr > factor * med) excluded.push({ rank: r, reason: `norm ${nr.toPrecision(4)} > ${factor} x median ${med.toPrecision(4)}` });
    else used.push(r);
  }
  excluded.sort((a, b) => a.rank - b.rank);
  const xs = used.map((r) => vectors[r] as ArrayLike<number>);
  const result =
    opts.mode === 'trimmed-mean'
      ? trimmedMean(xs, opts.trim ?? Math.floor((vectors.length - 1) / 3), n)
      : centeredClip(xs, n, opts.clipTau, opts.clipIters ?? DEFAULT_CLIP_ITERS);
  return { result, used, excluded };
}
