// A random stage checkpoint for the codec, store and fuzz tests.
import type { StageCheckpoint } from '../../src/swarm/checkpoints';
import { layoutOf, stateDigest } from '../../src/swarm/state-transfer';
import { randn } from './random';

/** A stage checkpoint of `n` random values (with the local-steps outer state when `outer`). */
export function sampleCheckpoint(
  rand: () => number,
  n: number,
  outer: boolean,
  at: { step?: number; stage?: number; runId?: string } = {},
): StageCheckpoint {
  const layout = layoutOf({ total: n, slots: [{ spec: { name: 'h.0.w', shape: [n] }, offset: 0, size: n }] });
  const s = {
    layout,
    step: at.step ?? 7,
    params: randn(n, rand),
    m: randn(n, rand, 0.01),
    v: randn(n, rand, 0.001).map(Math.abs),
    ...(outer ? { outer: { sync: randn(n, rand), mom: randn(n, rand, 0.1), ef: randn(n, rand, 0.01) } } : {}),
  };
  return { runId: at.runId ?? 'run-1:a.b', stage: at.stage ?? 2, savedAt: 1_750_000_000_123, digest: stateDigest(s), ...s };
}

function bits(a: Float32Array): number[] {
  return [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
}

/** A checkpoint as plain comparable data (float bits, so -0 and NaN payloads count). */
export function checkpointBits(c: StageCheckpoint): unknown {
  return {
    ...c,
    params: bits(c.params),
    m: bits(c.m),
    v: bits(c.v),
    outer: c.outer && { sync: bits(c.outer.sync), mom: bits(c.outer.mom), ef: bits(c.outer.ef) },
  };
}
