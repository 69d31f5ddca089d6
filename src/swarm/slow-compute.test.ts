import { describe, expect, it } from 'vitest';
import { parseSlowFactor } from './slow-compute';
import { slowFromFlag } from '../cli/peer';
import { UsageError } from '../cli/args';

describe('--slow FACTOR', () => {
  it('accepts a factor from 1 to 1000', () => {
    expect(parseSlowFactor('2')).toBe(2);
    expect(parseSlowFactor('1.5')).toBe(1.5);
    expect(parseSlowFactor('1')).toBe(1);
    expect(slowFromFlag('3')).toEqual({ factor: 3 });
    expect(slowFromFlag(undefined)).toBeUndefined();
  });

  it('refuses anything else with a usage error', () => {
    for (const bad of ['0.5', '0', '-2', 'abc', '', 'Infinity', 'NaN', '1e9']) {
      expect(() => parseSlowFactor(bad)).toThrow(/--slow: FACTOR/);
      expect(() => slowFromFlag(bad)).toThrow(UsageError);
    }
  });
});
