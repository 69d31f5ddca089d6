// Seeded random data for tests. Every random input a test uses comes from one of these seeds, so a run is
// reproducible by default: the seed is a hash of the test's name, XOR TABSWARM_TEST_SEED (default 0). Set
// TABSWARM_TEST_SEED to another number to explore other inputs, or to `random` for a fresh one per process; a failing
// test prints the value that reproduces it.
import { expect, onTestFailed, onTestFinished } from 'vitest';

/** mulberry32: small, fast, seedable. */
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

/** FNV-1a over the UTF-16 code units: a stable 32-bit hash of a name. */
export function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The run-wide part of every seed: TABSWARM_TEST_SEED (a number, or `random`), 0 when unset. */
export function seedOverride(env: string | undefined = process.env.TABSWARM_TEST_SEED): number {
  if (env === undefined || env === '') return 0;
  if (env === 'random') {
    processOverride ??= (Math.random() * 2 ** 32) >>> 0;
    return processOverride;
  }
  const n = Number(env);
  if (!Number.isInteger(n)) throw new Error(`TABSWARM_TEST_SEED must be an integer or "random", got "${env}"`);
  return n >>> 0;
}
let processOverride: number | undefined;

/** The seed for `name` (a test or case name): hash(name) ^ TABSWARM_TEST_SEED. */
export function testSeed(name: string): number {
  return (hashName(name) ^ seedOverride()) >>> 0;
}

const calls = new Map<string, number>();

/**
 * A seed for the running test: testSeed of its full name (the n-th call in one test adds `#n`, so two calls get
 * different data). When the test fails, the override that reproduces it is printed.
 */
export function freshSeed(): number {
  const test = expect.getState().currentTestName;
  if (test === undefined) throw new Error('freshSeed() outside a test: use testSeed(name)');
  const n = calls.get(test) ?? 0;
  calls.set(test, n + 1);
  const seed = testSeed(n === 0 ? test : `${test}#${n}`);
  if (n === 0) {
    const override = seedOverride();
    onTestFinished(() => {
      calls.delete(test); // a retry starts from the same seeds
    });
    onTestFailed(() => {
      console.error(`[seed] "${test}" used seed ${seed}; reproduce with TABSWARM_TEST_SEED=${override}`);
    });
  }
  return seed;
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
