// The Node checkpoint store (src/cli/checkpoint-dir.ts) on a real temporary directory: round trip, the keep ring,
// a crash mid-write (a leftover temporary file), damaged and misnamed files, concurrent saves, prune.
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointDir } from '../../src/cli/checkpoint-dir';
import { encodeStageCheckpoint } from '../../src/swarm/checkpoint-codec';
import { freshSeed, rng } from '../support/random';
import { checkpointBits, sampleCheckpoint } from '../support/stage-checkpoint';

let dir = '';
const logs: string[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tabswarm-ckdir-'));
  logs.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const store = () => new CheckpointDir(dir, (s) => logs.push(s));
const refOf = (c: { runId: string; stage: number; step: number; digest: string }) => ({
  runId: c.runId,
  stage: c.stage,
  step: c.step,
  digest: c.digest,
});

describe('CheckpointDir', () => {
  it('saves, lists newest first and loads bitwise; keeps the newest `keep` per (run, stage)', async () => {
    const rand = rng(freshSeed());
    const s = store();
    const cks = [5, 10, 15, 20].map((step) => sampleCheckpoint(rand, 33, step === 10, { step, stage: 1, runId: 'r1' }));
    const other = sampleCheckpoint(rand, 9, false, { step: 5, stage: 0, runId: 'r1' });
    for (const c of cks) await s.save(c, 3);
    await s.save(other, 3);
    expect(await s.list()).toEqual([cks[3], cks[2], cks[1], other].map(refOf));
    expect((await readdir(join(dir, 'r1'))).sort()).toEqual([
      'stage0-step5.safetensors',
      'stage1-step10.safetensors',
      'stage1-step15.safetensors',
      'stage1-step20.safetensors',
    ]);
    const got = await s.load({ runId: 'r1', stage: 1, step: 10 });
    expect(got && checkpointBits(got)).toEqual(checkpointBits(cks[1]));
    expect(await s.load({ runId: 'r1', stage: 1, step: 5 })).toBeNull(); // trimmed
    expect(await s.load({ runId: 'r2', stage: 1, step: 10 })).toBeNull(); // never saved
    // A fresh store on the same directory (a restarted peer) finds them.
    expect(await store().list()).toEqual([cks[3], cks[2], cks[1], other].map(refOf));
  });

  it('a crash mid-write (a leftover temporary file) is ignored, and removed by a later save once stale', async () => {
    const rand = rng(freshSeed());
    const s = store();
    const c5 = sampleCheckpoint(rand, 16, false, { step: 5, stage: 0, runId: 'r1' });
    await s.save(c5, 3);
    const c10 = sampleCheckpoint(rand, 16, false, { step: 10, stage: 0, runId: 'r1' });
    const tmp = join(dir, 'r1', '.stage0-step10.safetensors.4242-0.tmp');
    await writeFile(tmp, encodeStageCheckpoint(c10).subarray(0, 100)); // the process died mid-write
    expect(await s.list()).toEqual([refOf(c5)]);
    expect(await s.load({ runId: 'r1', stage: 0, step: 10 })).toBeNull();
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(tmp, old, old);
    await s.save(c10, 3);
    expect((await readdir(join(dir, 'r1'))).sort()).toEqual(['stage0-step10.safetensors', 'stage0-step5.safetensors']);
  });

  it('a damaged file: load returns null and deletes it; a misnamed one too', async () => {
    const rand = rng(freshSeed());
    const s = store();
    const c = sampleCheckpoint(rand, 16, true, { step: 5, stage: 0, runId: 'r1' });
    await s.save(c, 3);
    const path = join(dir, 'r1', 'stage0-step5.safetensors');
    const bytes = new Uint8Array(await readFile(path));
    bytes[bytes.length - 7] ^= 0x10; // one bit of the error-feedback residual
    await writeFile(path, bytes);
    expect(await s.load({ runId: 'r1', stage: 0, step: 5 })).toBeNull();
    expect(await readdir(join(dir, 'r1'))).toEqual([]);
    expect(logs.join('\n')).toMatch(/damaged, deleted: .*check mismatch/);
    // A valid file under another step's name is not what its name says.
    await s.save(c, 3);
    await writeFile(join(dir, 'r1', 'stage0-step6.safetensors'), await readFile(path));
    expect(await s.list()).toEqual([refOf(c)]);
    expect(await s.load({ runId: 'r1', stage: 0, step: 6 })).toBeNull();
    expect(await readdir(join(dir, 'r1'))).toEqual(['stage0-step5.safetensors']);
  });

  it('concurrent saves, lists and loads: every operation sees whole files, the ring holds the newest', async () => {
    const rand = rng(freshSeed());
    const s = store();
    const cks = Array.from({ length: 12 }, (_, i) => sampleCheckpoint(rand, 64, i % 2 === 0, { step: 5 * (i + 1), stage: i % 2, runId: 'run:x' }));
    const ops: Promise<unknown>[] = [];
    for (const c of cks) {
      ops.push(s.save(c, 2));
      ops.push(s.list());
      ops.push(s.load({ runId: c.runId, stage: c.stage, step: c.step }));
    }
    const results = await Promise.all(ops);
    // Each load right after its save (serialized) found that very checkpoint.
    for (let i = 0; i < cks.length; i++) expect(checkpointBits(results[3 * i + 2] as never)).toEqual(checkpointBits(cks[i]));
    expect(await s.list()).toEqual([cks[11], cks[10], cks[9], cks[8]].map(refOf));
    expect((await readdir(join(dir, 'run%3Ax'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(logs).toEqual([]);
  });

  it('prune keeps one run and removes only checkpoint files of the others; run ids are never paths', async () => {
    const rand = rng(freshSeed());
    const s = store();
    const a = sampleCheckpoint(rand, 8, false, { step: 5, stage: 0, runId: 'keep' });
    const b = sampleCheckpoint(rand, 8, false, { step: 5, stage: 0, runId: '..' });
    const c = sampleCheckpoint(rand, 8, false, { step: 5, stage: 1, runId: 'old' });
    for (const x of [a, b, c]) await s.save(x, 3);
    expect((await readdir(dir)).sort()).toEqual(['%2E%2E', 'keep', 'old']);
    await writeFile(join(dir, 'old', 'notes.txt'), 'not ours');
    await s.prune('keep');
    expect(await s.list()).toEqual([refOf(a)]);
    expect((await readdir(dir)).sort()).toEqual(['keep', 'old']);
    expect(await readdir(join(dir, 'old'))).toEqual(['notes.txt']);
  });
});
