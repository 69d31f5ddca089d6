import { describe, expect, it } from 'vitest';
import { freshSeed, hashName, rng, seedOverride, testSeed } from './random';

describe('test seeds', () => {
  it('are fixed by default: a hash of the name, XOR the override', () => {
    expect(hashName('a')).toBe(0xe40c292c); // FNV-1a test vector
    expect(seedOverride(undefined)).toBe(0);
    expect(seedOverride('5')).toBe(5);
    expect(() => seedOverride('x')).toThrow(/TABSWARM_TEST_SEED/);
    expect(seedOverride('random')).toBe(seedOverride('random')); // one value per process
    expect(testSeed('some case')).toBe((hashName('some case') ^ seedOverride()) >>> 0);
  });

  it("freshSeed is the test name's seed, distinct per call within a test", () => {
    const first = freshSeed();
    const second = freshSeed();
    expect(first).toBe(testSeed(expect.getState().currentTestName!));
    expect(second).not.toBe(first);
  });

  it('rng is a pure function of its seed', () => {
    const a = rng(42);
    const b = rng(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });
});
