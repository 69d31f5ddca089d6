import { describe, expect, it } from 'vitest';
import { learningRate } from './schedule';

describe('learningRate', () => {
  const s = { lr: 1e-3, minLr: 1e-4, warmup: 10, decaySteps: 110 };
  it('warms up linearly, peaks, then decays by cosine to min_lr', () => {
    expect(learningRate(0, s)).toBeCloseTo(1e-3 / 11, 12);
    expect(learningRate(9, s)).toBeCloseTo((1e-3 * 10) / 11, 12);
    expect(learningRate(10, s)).toBeCloseTo(1e-3, 12);
    expect(learningRate(60, s)).toBeCloseTo(1e-4 + 0.5 * 9e-4, 12);
    expect(learningRate(110, s)).toBe(1e-4);
    expect(learningRate(500, s)).toBe(1e-4);
    for (let i = 11; i < 110; i++) expect(learningRate(i, s)).toBeLessThan(learningRate(i - 1, s));
  });
});
