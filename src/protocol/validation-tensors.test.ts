// Fuzz: a validation upload's meta is peer input. 10,000 seeded random metas (valid ones mutated, and junk): the
// parser never throws, accepts exactly the well-formed ones, and refuses the rest with a message.
import { describe, expect, it } from 'vitest';
import { rng, testSeed } from '../../tests/support/random';
import { readValidationMeta, validationMetaSchema, type ValidationMeta } from './validation-tensors';
import type { TensorMeta } from '../net/tensor';

const PARTS = ['head', 'act', 'grad', 'contrib', 'out-act', 'out-grad'];

describe('readValidationMeta (fuzz)', () => {
  it('10,000 seeded metas: no throw; valid ones accepted as they are, others refused with a reason', () => {
    const seed = testSeed('validation-meta-fuzz');
    const rand = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const junk = (): string | number | boolean | null =>
      pick<string | number | boolean | null>(['', 'x'.repeat(300), -1, 1.5, 1e300, NaN, true, null, 7, 'act']);
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) {
      const good: ValidationMeta = {
        step: Math.floor(rand() * 1000),
        attempt: Math.floor(rand() * 4),
        stage: Math.floor(rand() * 8),
        part: pick(PARTS) as ValidationMeta['part'],
        mb: Math.floor(rand() * 64) - 1,
        n: Math.floor(rand() * 100),
      };
      const meta: Record<string, string | number | boolean | null> = { ...good };
      const mutations = Math.floor(rand() * 3);
      const keys = [...Object.keys(good), 'extra'];
      for (let m = 0; m < mutations; m++) {
        const k = pick(keys);
        if (rand() < 0.3) delete meta[k];
        else meta[k] = junk();
      }
      let r: ReturnType<typeof readValidationMeta> | undefined;
      expect(() => (r = readValidationMeta(meta as TensorMeta)), `seed ${seed} input ${i}`).not.toThrow();
      const valid = validationMetaSchema.safeParse(meta).success;
      expect(r?.ok, `seed ${seed} input ${i}: ${JSON.stringify(meta)}`).toBe(valid);
      if (r && !r.ok) expect(r.error).toMatch(/^validation upload meta: /);
      if (r?.ok) {
        accepted++;
        expect(PARTS).toContain(r.value.part);
      }
    }
    // Both outcomes are exercised.
    expect(accepted).toBeGreaterThan(1000);
    expect(accepted).toBeLessThan(9000);
  });
});
