// The simulator's one source of randomness: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit
// state, passes PractRand to 2^40+ bytes) seeded through splitmix32, so every draw of a scenario follows from its
// seed alone: the same seed gives the same peers, the same churn and the same adversaries on every machine.
// Distributions are drawn by textbook inversion / Box-Muller so each draw consumes a fixed number of uniforms.

/** splitmix32 step: spreads a small integer seed over 32 bits (Steele et al.'s SplitMix, 32-bit variant). */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed`: any finite number; its integer part (mod 2^32) and its fraction bits both count. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    this.a = splitmix32(lo);
    this.b = splitmix32(this.a ^ hi);
    this.c = splitmix32(this.b);
    this.d = 1; // sfc32's counter starts at 1
    for (let i = 0; i < 15; i++) this.nextU32(); // the authors' warm-up
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new Error(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Normal(mean, sd) by Box-Muller (two uniforms per draw, the second value discarded: a fixed cost per draw). */
  normal(mean = 0, sd = 1): number {
    const u1 = 1 - this.next(); // (0, 1]: log stays finite
    const u2 = this.next();
    return mean + sd * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Log-normal with the given MEDIAN (= e^mu) and sigma of the underlying normal: "typically X, spread sigma". */
  lognormal(median: number, sigma: number): number {
    if (!(median > 0)) throw new Error(`Rng.lognormal: median must be positive, got ${median}`);
    return median * Math.exp(sigma * this.normal());
  }

  /** Exponential with the given mean (inversion). */
  exponential(mean: number): number {
    if (!(mean > 0)) throw new Error(`Rng.exponential: mean must be positive, got ${mean}`);
    return -mean * Math.log(1 - this.next());
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Index i with probability weights[i] / sum(weights). */
  pickIndex(weights: readonly number[]): number {
    const total = weights.reduce((s, w) => {
      if (!(w >= 0) || !Number.isFinite(w)) throw new Error(`Rng.pick: weights must be finite and >= 0, got ${w}`);
      return s + w;
    }, 0);
    if (!(total > 0)) throw new Error('Rng.pick: the weights sum to 0');
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0) return i;
    }
    return weights.length - 1; // rounding: r landed exactly on the total
  }

  /** One of `items`, each with probability weight / sum of weights. */
  pick<T>(items: readonly { weight: number; value: T }[]): T {
    return items[this.pickIndex(items.map((i) => i.weight))].value;
  }

  /** A uniformly shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** 32 lowercase hex chars (a peer id's format, src/net/ids.ts), from four draws. */
  hexId(): string {
    let s = '';
    for (let i = 0; i < 4; i++) s += this.nextU32().toString(16).padStart(8, '0');
    return s;
  }

  /** An independent stream for one purpose (so adding draws to one part of a scenario leaves the others alone). */
  fork(label: string): Rng {
    let h = this.nextU32();
    for (let i = 0; i < label.length; i++) h = splitmix32(h ^ label.charCodeAt(i));
    return new Rng(h);
  }
}
