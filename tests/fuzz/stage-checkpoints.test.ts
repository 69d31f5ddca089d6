// Fuzz: stage checkpoint files (src/swarm/checkpoint-codec.ts decodeStageCheckpoint, checkpointHeaderOf). 12,000
// seeded inputs: a valid checkpoint (per-step or local-steps) with byte-level mutations, its JSON header rewritten
// with random edits, or random bytes. Each is refused with a plain Error that says what is wrong, or decodes to
// exactly the checkpoint that was encoded (a mutation of header padding, say): a damaged file is never accepted.
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { checkpointHeaderOf, decodeStageCheckpoint, encodeStageCheckpoint } from '../../src/swarm/checkpoint-codec';
import type { StageCheckpoint } from '../../src/swarm/checkpoints';
import { rng, testSeed } from '../support/random';
import { checkpointBits, sampleCheckpoint } from '../support/stage-checkpoint';
import { isCrash, mutate, randomBytes } from './mutate';

const INPUTS = 12_000;

/** The header's JSON text with a random edit (a character changed, a number replaced, a key or value swapped). */
function mutateHeader(file: Uint8Array, rand: () => number): Uint8Array {
  const len = new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(0, true);
  let text = new TextDecoder().decode(file.subarray(8, 8 + len));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const edits: (() => void)[] = [
    () => {
      const i = Math.floor(rand() * text.length);
      text = text.slice(0, i) + String.fromCharCode(32 + Math.floor(rand() * 95)) + text.slice(i + 1);
    },
    () => {
      const nums = [...text.matchAll(/\d+/g)];
      const m = pick(nums);
      const repl = ['-1', '0', '1e400', '9007199254740993', '1.5', '"3"', 'null', '4294967296', String(Math.floor(rand() * 5000))];
      if (m?.index !== undefined) text = text.slice(0, m.index) + pick(repl) + text.slice(m.index + m[0].length);
    },
    () => {
      const keys = [
        '"params"',
        '"m"',
        '"v"',
        '"outer.sync"',
        '"outer.mom"',
        '"outer.ef"',
        '"F32"',
        '"runId"',
        '"stage"',
        '"step"',
        '"digest"',
        '"check"',
        '"format"',
        '"savedAt"',
        '"layout"',
        '"__metadata__"',
      ];
      const k = pick(keys);
      text = text.replace(k, pick(['"x"', '"F16"', '"BF16"', '"F64"', '""', '"outer.ef"', '"params"', '"step"', '"stage"', k.toUpperCase()]));
    },
    () => {
      // A metadata value swapped for a plausible other one (same length where possible, so offsets stay valid).
      const m = pick([...text.matchAll(/"(stage|step|savedAt)":"(\d+)"/g)]);
      if (m?.index !== undefined) {
        const v = m[2].slice(0, -1) + String((Number(m[2].slice(-1)) + 1 + Math.floor(rand() * 8)) % 10);
        text = text.replace(m[0], `"${m[1]}":"${v}"`);
      }
    },
  ];
  pick(edits)();
  const header = new TextEncoder().encode(text);
  const body = file.subarray(8 + len);
  const out = new Uint8Array(8 + header.length + body.length);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 8);
  out.set(body, 8 + header.length);
  return out;
}

describe('fuzz: stage checkpoints', () => {
  it(`${INPUTS} mutated and random stage checkpoint files: refused with a clear error or decoded unchanged`, () => {
    const rand = rng(testSeed('fuzz: stage checkpoints'));
    const cks: StageCheckpoint[] = [sampleCheckpoint(rand, 24, false), sampleCheckpoint(rand, 12, true, { step: 15, stage: 0 })];
    const valid = cks.map(encodeStageCheckpoint);
    const crashes: string[] = [];
    const accepted: string[] = [];
    let refused = 0;
    let same = 0;
    for (let i = 0; i < INPUTS; i++) {
      const k = i % 2;
      const v = valid[k];
      const r = rand();
      const headerEnd = 8 + new DataView(v.buffer).getUint32(0, true);
      const file = r < 0.05 ? randomBytes(rand, 256) : r < 0.45 ? mutateHeader(v, rand) : mutate(v, rand, [[0, headerEnd]]);
      for (const [what, run] of [
        ['decode', () => decodeStageCheckpoint(file)],
        ['header', () => checkpointHeaderOf(file)],
      ] as const) {
        try {
          const got = run();
          if (what === 'decode') {
            // Accepted: it must be the very checkpoint that was encoded.
            if (!isDeepStrictEqual(checkpointBits(got as StageCheckpoint), checkpointBits(cks[k]))) accepted.push(`input ${i}`);
            else same++;
          }
        } catch (e) {
          if (isCrash(e)) crashes.push(`input ${i} (${what}): ${String(e)}`);
          else if (what === 'decode') refused++;
        }
      }
    }
    expect(crashes.slice(0, 5)).toEqual([]);
    expect(accepted.slice(0, 5)).toEqual([]);
    expect(refused + same).toBe(INPUTS);
    // Most inputs are damaged and refused; a few only touch the header's padding.
    expect(refused).toBeGreaterThan(INPUTS * 0.9);
    expect(same).toBeGreaterThan(0);
  });
});
