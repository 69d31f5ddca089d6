// Elementwise closeness of computed values to a reference, with a message that names the worst element.
// Both sides must be finite: a NaN or infinity on either side is a failure, never a vacuous pass (NaN compares
// false with everything, so a tolerance check alone would let it through).

export interface CloseReport {
  maxAbs: number;
  maxRel: number;
  worst: number;
}

/**
 * Asserts |a - e| <= atol + rtol * |e| elementwise, every actual and every expected value finite.
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
    if (!Number.isFinite(e))
      throw new Error(`${what}: expected element ${i} is ${e}: the reference is broken (a non-finite value cannot be compared)`);
    if (!Number.isFinite(a)) throw new Error(`${what}: element ${i} is ${a}, expected ${e}`);
    const d = Math.abs(a - e);
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
  return Float64Array.from(a);
}
