// The tab's CheckpointStore (src/ui/idb-checkpoints.ts) in headless Chromium, over the real IndexedDB and the real
// checkpoint codec: save / list / load round trip (digest recomputed from the loaded tensors), the keep ring per
// (run, stage), a re-save of a step, damaged records (a flipped tensor bit, bytes of another checkpoint under a key,
// not bytes at all) deleted on load, prune of other runs and of foreign keys, two peer ids kept apart, and
// persistence across a reload of the page (same browser context, as a reloaded tab).
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { browserSuite } from './suite';

const A = 'peer-aaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const B = 'peer-bbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const RUN = 'run-ck';

describe('the tab keeps its stage checkpoints in IndexedDB', () => {
  const suite = browserSuite();

  it('saves, lists, loads, keeps a ring, deletes damaged records, prunes other runs and survives a reload', async () => {
    const ctx = await suite.browser.newContext();
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const open = async (p: Page) => {
      await p.goto(`${suite.server.url}/tests/browser/checkpoints/index.html`);
      await p.waitForFunction(() => typeof window.ck === 'object', undefined, { timeout: 60_000 });
    };
    await open(page);
    const at = (stage: number, step: number, runId = RUN) => ({ runId, stage, step });

    // Round trip, local-steps outer state included.
    const d5 = await page.evaluate(([p, a]) => window.ck.save(p, a, 3, { outer: true, n: 300 }), [A, at(0, 5)] as const);
    expect(await page.evaluate((p) => window.ck.list(p), A)).toEqual([{ runId: RUN, stage: 0, step: 5, digest: d5 }]);
    expect(await page.evaluate(([p, a]) => window.ck.load(p, a), [A, at(0, 5)] as const)).toEqual({
      digest: d5,
      recomputed: d5,
      n: 300,
      outer: true,
    });
    expect(await page.evaluate(([p, a]) => window.ck.load(p, a), [A, at(0, 6)] as const)).toBeNull();
    expect(await page.evaluate(([p, a]) => window.ck.load(p, a), [A, at(1, 5)] as const)).toBeNull();

    // The ring: keep 3 per (run, stage); another stage's and B's are untouched by A's stage 0 ring.
    const save = (peer: string, stage: number, step: number, keep = 3, seed?: number) =>
      page.evaluate(([p, a, k, s]) => window.ck.save(p, a, k, s === null ? {} : { seed: s }), [peer, at(stage, step), keep, seed ?? null] as const);
    await save(A, 1, 4);
    await save(B, 0, 4);
    for (const step of [6, 7, 8]) await save(A, 0, step);
    const listA = await page.evaluate((p) => window.ck.list(p), A);
    expect(listA.map((r) => `${r.stage}@${r.step}`)).toEqual(['0@8', '0@7', '0@6', '1@4']); // newest step first
    expect((await page.evaluate((p) => window.ck.list(p), B)).map((r) => `${r.stage}@${r.step}`)).toEqual(['0@4']);
    // A smaller keep trims at once.
    await save(A, 0, 9, 2);
    expect((await page.evaluate((p) => window.ck.list(p), A)).map((r) => `${r.stage}@${r.step}`)).toEqual(['0@9', '0@8', '1@4']);
    // The same step saved again with other contents replaces the record (one per step).
    const d9b = await save(A, 0, 9, 2, 1234);
    const after = await page.evaluate((p) => window.ck.list(p), A);
    expect(after.filter((r) => r.step === 9)).toEqual([{ runId: RUN, stage: 0, step: 9, digest: d9b }]);

    // Concurrent calls are serialized: a burst of saves and lists ends in the ring's newest 3.
    await page.evaluate(
      ([p, run]) => Promise.all([10, 11, 12, 13, 14].flatMap((step) => [window.ck.save(p, { runId: run, stage: 2, step }, 3), window.ck.list(p)])),
      [A, RUN] as const,
    );
    expect((await page.evaluate((p) => window.ck.list(p), A)).filter((r) => r.stage === 2).map((r) => r.step)).toEqual([14, 13, 12]);

    // Persistence: a reload (same context, same origin) finds every record.
    const before = await page.evaluate((p) => window.ck.list(p), A);
    await page.reload();
    await open(page);
    expect(await page.evaluate((p) => window.ck.list(p), A)).toEqual(before);
    const d8 = before.find((r) => r.stage === 0 && r.step === 8)?.digest;
    expect(await page.evaluate(([p, a]) => window.ck.load(p, a), [A, at(0, 8)] as const)).toMatchObject({ digest: d8, recomputed: d8 });

    // Damaged records: deleted on load, reported, and the rest stays loadable.
    const keyOf = (r: { runId: string; stage: number; step: number; digest: string }) => [r.runId, r.stage, r.step, r.digest];
    const r8 = before.find((r) => r.stage === 0 && r.step === 8);
    const r12 = before.find((r) => r.stage === 2 && r.step === 12);
    const r13 = before.find((r) => r.stage === 2 && r.step === 13);
    if (!r8 || !r12 || !r13) throw new Error(`missing records in ${JSON.stringify(before)}`);
    await page.evaluate(([p, k]) => window.ck.flip(p, k), [A, keyOf(r8)] as const);
    expect(await page.evaluate(([p, a]) => window.ck.load(p, a), [A, at(0, 8)] as const)).toBeNull();
    // The bytes of step 13 under step 12's key: whole and digest-correct, but not the checkpoint its key names.
    const bytes13 = await page.evaluate(([p, k]) => window.ck.raw(p, k), [A, keyOf(r13)] as const);
    expect(bytes13).not.toBeNull();
    await page.evaluate(([p, k, b]) => window.ck.poke(p, k, Uint8Array.from(b ?? [])), [A, keyOf(r12), bytes13] as const);
    expect(await page.evaluate(([p, a]) => window.ck.load(p, a), [A, at(2, 12)] as const)).toBeNull();
    // Not bytes at all.
    await page.evaluate(([p, k]) => window.ck.poke(p, k, { params: [1, 2, 3] }), [A, keyOf({ runId: RUN, stage: 3, step: 1, digest: 'x' })] as const);
    expect(await page.evaluate(([p, a]) => window.ck.load(p, a), [A, at(3, 1)] as const)).toBeNull();
    const damaged = await page.evaluate(() => window.ck.damaged);
    expect(damaged).toHaveLength(3);
    expect(damaged[0]).toMatch(/run-ck\/0\/8: .*damaged/);
    expect(damaged[1]).toMatch(/run-ck\/2\/12: the record holds run-ck stage 2 step 13/);
    expect(damaged[2]).toMatch(/run-ck\/3\/1: the record is not bytes/);
    const left = (await page.evaluate((p) => window.ck.list(p), A)).map((r) => `${r.stage}@${r.step}`);
    expect(left).toEqual(['2@14', '2@13', '0@9', '1@4']);
    expect(await page.evaluate(([p, a]) => window.ck.load(p, a), [A, at(2, 13)] as const)).toMatchObject({ digest: r13.digest });

    // Prune: another run's records and keys of another shape go; this run's stay; B's database is its own.
    await save(A, 0, 3, 3);
    await page.evaluate(([p]) => window.ck.save(p, { runId: 'old-run', stage: 0, step: 20 }, 3), [A] as const);
    await page.evaluate(([p]) => window.ck.poke(p, 'not-a-checkpoint-key', 1), [A] as const);
    expect((await page.evaluate((p) => window.ck.rawKeys(p), A)).length).toBe(7);
    await page.evaluate(([p, r]) => window.ck.prune(p, r), [A, RUN] as const);
    const pruned = await page.evaluate((p) => window.ck.list(p), A);
    expect(pruned.every((r) => r.runId === RUN)).toBe(true);
    expect(pruned.map((r) => `${r.stage}@${r.step}`)).toEqual(['2@14', '2@13', '0@9', '1@4', '0@3']);
    expect(await page.evaluate((p) => window.ck.rawKeys(p), A)).toHaveLength(5);
    expect((await page.evaluate((p) => window.ck.list(p), B)).map((r) => `${r.stage}@${r.step}`)).toEqual(['0@4']);
    expect(errors).toEqual([]);
    await ctx.close();
  }, 120_000);
});
