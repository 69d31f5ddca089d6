// Fuzz: the coordinator's saved run (src/coordinator/run-state.ts parseSavedRun). 10,000 seeded inputs: a valid saved
// run's text with random edits (a character changed or deleted, a number replaced by an edge value, a key renamed, a
// cut, a splice), random JSON values, or random bytes. Each is refused with a message (never a throw), or accepted
// whole and consistent: a saved run of this room and key, not finished, its membership and digests one per stage,
// its reports in order before its step, its ledger of this run.
import { describe, expect, it } from 'vitest';
import { encodeSavedRun, parseSavedRun } from '../../src/coordinator/run-state';
import { rng, testSeed } from '../support/random';
import { sampleSavedRun, savedRunOwner } from '../support/saved-run';
import { randomBytes } from './mutate';

const INPUTS = 10_000;
const EDGE = ['-1', '0', '1e309', '1.5', '9007199254740993', 'null', 'true', '""', '[]', '{}', '"x"', '256', '6', '7'];

function int(rand: () => number, hi: number): number {
  return Math.floor(rand() * hi);
}

function editText(text: string, rand: () => number): string {
  let t = text;
  const edits = 1 + int(rand, 3);
  for (let e = 0; e < edits; e++) {
    const i = int(rand, t.length);
    switch (int(rand, 7)) {
      case 0:
        t = t.slice(0, i) + String.fromCharCode(32 + int(rand, 95)) + t.slice(i + 1);
        break;
      case 1:
        t = t.slice(0, i) + t.slice(i + 1 + int(rand, 8));
        break;
      case 2: {
        // A number replaced by an edge value.
        const nums = [...t.matchAll(/-?\d+(\.\d+)?(e[+-]?\d+)?/g)];
        if (nums.length === 0) break;
        const m = nums[int(rand, nums.length)];
        const at = m.index ?? 0;
        t = t.slice(0, at) + EDGE[int(rand, EDGE.length)] + t.slice(at + m[0].length);
        break;
      }
      case 3: {
        // A key renamed.
        const keys = [...t.matchAll(/"([a-zA-Z]+)":/g)];
        if (keys.length === 0) break;
        const m = keys[int(rand, keys.length)];
        const at = m.index ?? 0;
        t = `${t.slice(0, at)}"${m[1]}x":${t.slice(at + m[0].length)}`;
        break;
      }
      case 4:
        t = t.slice(0, i);
        break;
      case 5: {
        // A value replaced by another one of the file.
        const j = int(rand, t.length);
        t = t.slice(0, i) + t.slice(j, j + int(rand, 40)) + t.slice(i + int(rand, 40));
        break;
      }
      default:
        t = t.slice(0, i) + EDGE[int(rand, EDGE.length)] + t.slice(i);
    }
  }
  return t;
}

function randomJson(rand: () => number, depth = 0): unknown {
  const k = int(rand, depth > 2 ? 4 : 6);
  if (k === 0) return int(rand, 10) - 2;
  if (k === 1) return ['tabswarm-run-state', 'room-1', '', 'x'][int(rand, 4)];
  if (k === 2) return null;
  if (k === 3) return rand() < 0.5;
  if (k === 4) return Array.from({ length: int(rand, 4) }, () => randomJson(rand, depth + 1));
  const keys = ['kind', 'version', 'room', 'coordinator', 'run', 'step', 'membership', 'ledger', 'reports'];
  return Object.fromEntries(Array.from({ length: int(rand, 6) }, () => [keys[int(rand, keys.length)], randomJson(rand, depth + 1)]));
}

describe('fuzz: saved run', () => {
  it(`${INPUTS} edited, random and garbage inputs: refused with a message or accepted whole`, async () => {
    const rand = rng(testSeed('fuzz saved run'));
    const valid = encodeSavedRun(await sampleSavedRun());
    const owner = savedRunOwner();
    let accepted = 0;
    for (let n = 0; n < INPUTS; n++) {
      const r = rand();
      const text = r < 0.8 ? editText(valid, rand) : r < 0.9 ? JSON.stringify(randomJson(rand)) : new TextDecoder().decode(randomBytes(rand, 256));
      const v = await parseSavedRun(text, owner);
      if (!v.ok) {
        expect(typeof v.error).toBe('string');
        expect(v.error.length).toBeGreaterThan(0);
        expect(v.error).not.toMatch(/TypeError|RangeError|undefined is not|Cannot read/);
        continue;
      }
      accepted++;
      const s = v.saved;
      const stages = s.run.stages.length;
      expect(s.room).toBe(owner.room);
      expect(s.coordinator).toBe(owner.coordinator);
      expect(s.step).toBeLessThan(s.run.steps);
      expect(s.membership).toHaveLength(stages);
      expect(s.digests).toHaveLength(stages);
      for (let i = 0; i < s.reports.length; i++) {
        expect(s.reports[i].step).toBeLessThan(s.step);
        if (i > 0) expect(s.reports[i].step).toBeGreaterThan(s.reports[i - 1].step);
      }
      if (s.ledger) expect(s.ledger.doc.run).toBe(s.run.runId);
    }
    // Some edits keep a valid file (e.g. a loss figure changed): the accepted path is exercised too.
    expect(accepted).toBeGreaterThan(0);
  });
});
