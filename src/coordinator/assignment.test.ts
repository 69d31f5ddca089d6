import { describe, expect, it } from 'vitest';
import { assignStage, computePerLayer } from './assignment';

describe('assignStage', () => {
  it('fills empty stages first, lowest index first', () => {
    expect(
      assignStage([
        { layers: 2, throughputs: [] },
        { layers: 1, throughputs: [] },
      ]),
    ).toBe(0);
    expect(
      assignStage([
        { layers: 2, throughputs: [5] },
        { layers: 1, throughputs: [] },
        { layers: 1, throughputs: [] },
      ]),
    ).toBe(1);
    expect(
      assignStage([
        { layers: 1, throughputs: [1] },
        { layers: 1, throughputs: [100] },
        { layers: 1, throughputs: [] },
      ]),
    ).toBe(2);
  });

  it('then picks the stage with the least compute per layer', () => {
    // per layer: 10/2 = 5, 8/1 = 8, 3/1 = 3
    expect(
      assignStage([
        { layers: 2, throughputs: [10] },
        { layers: 1, throughputs: [8] },
        { layers: 1, throughputs: [1, 2] },
      ]),
    ).toBe(2);
    // a slow stage with more layers needs help more than a fast one
    expect(
      assignStage([
        { layers: 1, throughputs: [6] },
        { layers: 3, throughputs: [9] },
      ]),
    ).toBe(1);
  });

  it('breaks ties towards the lower index and ignores nonsense throughputs', () => {
    expect(
      assignStage([
        { layers: 1, throughputs: [4] },
        { layers: 2, throughputs: [8] },
      ]),
    ).toBe(0);
    expect(computePerLayer({ layers: 2, throughputs: [Number.NaN, -3, 4] })).toBe(2);
  });

  it('rejects degenerate input', () => {
    expect(() => assignStage([])).toThrow(/no stages/);
    expect(() => computePerLayer({ layers: 0, throughputs: [1] })).toThrow(/at least one layer/);
  });

  it('passes over a stage at the replica cap while another has room', () => {
    const full = { layers: 1, throughputs: [1, 1, 1] };
    const fast = { layers: 1, throughputs: [100, 100] };
    expect(assignStage([full, fast], 3)).toBe(1);
    expect(assignStage([full, fast])).toBe(0);
    // Every stage full: the least loaded, as without a cap (the peer waits on standby).
    expect(assignStage([fast, full], 2)).toBe(1);
  });
});
