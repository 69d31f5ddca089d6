import { describe, expect, it } from 'vitest';
import { HEADER_BYTES } from '../compress/wire-format';
import { headFlops, layerFlops, microbatchCost, reduceBytesPerParam } from './microbatch-cost';
import { buildScenario } from './scenario';

describe('microbatchCost', () => {
  it('counts one block forward + backward as the ledger does (reference config)', () => {
    const s = buildScenario({}, {});
    // N = 12*64 = 768 tokens, C = 128: forward 2*768*12*128^2 + 4*12*64^2*128 = 327,155,712; x3 with backward.
    expect(layerFlops(s)).toBe(3 * (2 * 768 * 12 * 128 * 128 + 4 * 12 * 64 * 64 * 128));
    expect(microbatchCost(s).flopsPerLayer).toBe(layerFlops(s));
    expect(headFlops(s)).toBe(3 * 2 * 768 * 128 * 65);
    // a 1-layer model: the same block, no head counted
    expect(layerFlops(buildScenario({ stages: 1, model: { n_layer: 1 } }, {}))).toBe(layerFlops(s));
  });

  it('fp32 boundaries are the raw floats, no header (stage-wire)', () => {
    const c = microbatchCost(buildScenario({ compress: 'none' }, {}));
    expect(c.activationBytes).toBe(768 * 128 * 4);
    expect(c.gradBytes).toBe(768 * 128 * 4);
  });

  it('default: width-8 bottleneck, int4 blockwise (header + one f32 scale per 64 values + 8 codes per word)', () => {
    const c = microbatchCost(buildScenario({}, {}));
    const n = 768 * 8;
    const bytes = HEADER_BYTES + 4 * (n / 64 + n / 8);
    expect(c.activationBytes).toBe(bytes);
    expect(c.gradBytes).toBe(bytes);
    // 112x fewer than fp32 as README's --compress default says (header aside, the bench's figure)
    expect((768 * 128 * 4) / bytes).toBeGreaterThan(110);
  });

  it('act and grad codecs apart, fp16 and int8', () => {
    const c = microbatchCost(buildScenario({}, { compress: 'act=fp16,grad=int8:32' }));
    const n = 768 * 128;
    expect(c.activationBytes).toBe(HEADER_BYTES + 4 * (n / 2));
    expect(c.gradBytes).toBe(HEADER_BYTES + 4 * (n / 32 + n / 4));
  });

  it('replica sync bytes per parameter per step: fp32 per step, the sync codec over H steps when local', () => {
    expect(reduceBytesPerParam(buildScenario({}, {}))).toBe(4);
    expect(microbatchCost(buildScenario({}, {})).reduceBytesPerParam).toBe(4);
    const n = 12 * 128 * 128;
    const local = reduceBytesPerParam(buildScenario({}, { compress: 'sync=local:H=25:int4' }));
    expect(local).toBeCloseTo((HEADER_BYTES + 4 * (n / 64 + n / 8)) / n / 25, 12);
    expect(4 / local).toBeGreaterThan(150); // docs: ~177x fewer sync bytes at H=25 int4
  });
});
