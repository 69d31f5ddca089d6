import { describe, expect, it } from 'vitest';
import { expectClose } from './close';

describe('expectClose', () => {
  it('passes values within atol + rtol*|e| and reports the worst element', () => {
    const r = expectClose('ok', [1, 2.0001, -3], [1, 2, -3], 0, 1e-4);
    expect(r.worst).toBe(1);
    expect(r.maxAbs).toBeCloseTo(1e-4, 8);
  });

  it('fails outside the tolerance, naming the element', () => {
    expect(() => expectClose('far', [1, 2.1], [1, 2], 1e-3, 1e-3)).toThrow(/far: element 1 is 2.1, expected 2/);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])('fails on a non-finite expected value (%s)', (bad) => {
    // Whatever the actual value, even the same non-finite one: a broken reference must not pass.
    expect(() => expectClose('ref', [1, 0], [1, bad], 1, 1)).toThrow(/ref: expected element 1 is/);
    expect(() => expectClose('ref', [1, bad], [1, bad], 1, 1)).toThrow(/ref: expected element 1 is/);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])('fails on a non-finite actual value (%s)', (bad) => {
    expect(() => expectClose('got', [bad, 2], [1, 2], 1e9, 1e9)).toThrow(/got: element 0 is/);
  });

  it('fails when fewer values came back than expected', () => {
    expect(() => expectClose('short', [1], [1, 2], 1, 1)).toThrow(/short: 1 values, expected 2/);
  });
});
