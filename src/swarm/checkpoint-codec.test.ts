import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from '../model/safetensors';
import { rng, testSeed } from '../../tests/support/random';
import { checkpointBits, sampleCheckpoint } from '../../tests/support/stage-checkpoint';
import { CHECKPOINT_FORMAT, checkpointHeaderLength, checkpointHeaderOf, decodeStageCheckpoint, encodeStageCheckpoint } from './checkpoint-codec';
import type { StageCheckpoint } from './checkpoints';
import { stateDigest } from './state-transfer';

function expectSame(a: StageCheckpoint, b: StageCheckpoint): void {
  expect(checkpointBits(b)).toEqual(checkpointBits(a));
}

/** Re-encodes `bytes` with its metadata and tensors changed by `edit` (a well-formed safetensors file). */
function rewrite(
  bytes: Uint8Array,
  edit: (meta: Record<string, string>, t: Map<string, { shape: number[]; data: Float32Array }>) => void,
): Uint8Array {
  const f = decodeSafetensors(bytes);
  const t = new Map([...f.tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
  edit(f.metadata, t);
  return encodeSafetensors(
    [...t].map(([name, v]) => ({ name, ...v })),
    f.metadata,
  );
}

describe('stage checkpoint codec', () => {
  const rand = rng(testSeed('stage checkpoint codec'));

  it('round-trips bitwise, per-step and local-steps, -0 and NaN payloads included', () => {
    for (const outer of [false, true]) {
      const ck = sampleCheckpoint(rand, 37, outer);
      ck.params[3] = -0;
      ck.m[5] = Number.NaN;
      ck.digest = stateDigest(ck);
      const bytes = encodeStageCheckpoint(ck);
      expectSame(ck, decodeStageCheckpoint(bytes));
      expect(decodeSafetensors(bytes).metadata.format).toBe(CHECKPOINT_FORMAT);
    }
  });

  it('reads the metadata from the header alone', () => {
    const ck = sampleCheckpoint(rand, 20, false, { step: 15 });
    const bytes = encodeStageCheckpoint(ck);
    const head = bytes.subarray(0, checkpointHeaderLength(bytes.subarray(0, 8)));
    expect(checkpointHeaderOf(head)).toEqual({ runId: ck.runId, stage: 2, step: 15, digest: ck.digest, savedAt: ck.savedAt });
  });

  it('refuses to encode a checkpoint whose digest is not its state', () => {
    const ck = sampleCheckpoint(rand, 8, false);
    expect(() => encodeStageCheckpoint({ ...ck, step: ck.step + 1 })).toThrow(/digest .* is not the state's/);
  });

  it('refuses damaged, foreign and incomplete files with a clear error', () => {
    const ck = sampleCheckpoint(rand, 16, true);
    const good = encodeStageCheckpoint(ck);
    const cases: [string, Uint8Array, RegExp][] = [
      [
        'one flipped bit in params',
        (() => {
          const b = good.slice();
          b[b.length - 16 * 4 * 6 + 5] ^= 4;
          return b;
        })(),
        /digest mismatch/,
      ],
      [
        'one flipped bit in ef',
        (() => {
          const b = good.slice();
          b[b.length - 3] ^= 1;
          return b;
        })(),
        /check mismatch/,
      ],
      ['another stage', rewrite(good, (m) => (m.stage = '3')), /check mismatch/],
      ['another run', rewrite(good, (m) => (m.runId = 'run-2')), /check mismatch/],
      ['another step', rewrite(good, (m) => (m.step = '8')), /digest mismatch/],
      ['a non-canonical step', rewrite(good, (m) => (m.step = '07')), /"step" "07" is not a non-negative integer/],
      ['another format', rewrite(good, (m) => (m.format = 'tabswarm-stage-checkpoint/2')), /format .* is not/],
      ['an extra key', rewrite(good, (m) => (m.extra = 'x')), /unknown metadata key "extra"/],
      ['no digest', rewrite(good, (m) => delete m.digest), /metadata "digest" is missing/],
      ['an extra tensor', rewrite(good, (_m, t) => t.set('grads', { shape: [16], data: new Float32Array(16) })), /unexpected tensor "grads"/],
      ['half the outer state', rewrite(good, (_m, t) => t.delete('outer.ef')), /tensor "outer.ef" is missing/],
      ['a 2-d tensor', rewrite(good, (_m, t) => t.set('m', { shape: [4, 4], data: t.get('m')?.data ?? new Float32Array() })), /shape \[4,4\]/],
      ['a short tensor', rewrite(good, (_m, t) => t.set('v', { shape: [15], data: new Float32Array(15) })), /"v" has 15 values/],
      ['a truncated file', good.subarray(0, good.length - 1), /stage checkpoint: safetensors: .*hole|out of range/],
      ['not a safetensors file', new TextEncoder().encode('hello world, this is not it'), /stage checkpoint: safetensors/],
    ];
    for (const [what, bytes, re] of cases) {
      expect(() => decodeStageCheckpoint(bytes), what).toThrow(re);
    }
  });
});
