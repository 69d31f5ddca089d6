// Shared helpers for GPU tests: one Runtime per test process, seeded random data, NaN poisoning, comparisons.
import { nodeRuntime } from '../../src/gpu/node-runtime';
import type { Runtime } from '../../src/gpu/runtime';
import type { Tensor } from '../../src/gpu/tensor';

let rtPromise: Promise<Runtime> | undefined;
export function gpuRuntime(): Promise<Runtime> {
  rtPromise ??= nodeRuntime({ quiet: true });
  return rtPromise;
}

/** mulberry32: small, fast, seedable. Tests use a fresh seed per run unless TABSWARM_SEED is set (printed on failure). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function freshSeed(): number {
  const env = process.env.TABSWARM_SEED;
  return env ? Number(env) : (Math.random() * 2 ** 31) | 0;
}

/** Standard normal samples (Box-Muller) times `scale`. */
export function randn(n: number, rand: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

export function randInt(n: number, hi: number, rand: () => number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * hi);
  return out;
}

/** Writes NaN into every element so a kernel that skips an output cannot pass. */
export function poison(rt: Runtime, ...ts: Tensor[]): void {
  for (const t of ts) rt.fill(t, Number.NaN);
}

export interface CloseReport {
  maxAbs: number;
  maxRel: number;
  worst: number;
}

/**
 * Asserts |a - e| <= atol + rtol * |e| elementwise (and no NaN), with a message that names the worst element.
 */
export function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): CloseReport {
  if (actual.length < expected.length) throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const d = Math.abs(a - e);
    if (!Number.isFinite(a) && Number.isFinite(e)) {
      throw new Error(`${what}: element ${i} is ${a}, expected ${e}`);
    }
    const excess = d - (atol + rtol * Math.abs(e));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
    maxAbs = Math.max(maxAbs, d);
    maxRel = Math.max(maxRel, d / Math.max(Math.abs(e), 1e-30));
  }
  if (worstExcess > 0) {
    throw new Error(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (|diff| ${Math.abs(actual[worst] - expected[worst]).toExponential(3)} > ` +
        `${atol} + ${rtol}*|e|); max abs diff ${maxAbs.toExponential(3)}`,
    );
  }
  return { maxAbs, maxRel, worst };
}

export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a as ArrayLike<number>);
}
