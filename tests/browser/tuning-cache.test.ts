// A tab keeps its matmul tuning (src/gpu/tuning-cache.ts): in headless Chromium (SwiftShader) the first start times
// the variants and stores the winners in IndexedDB; after a reload (same origin, same browser context) a fresh
// Worker loads them and times nothing, with the same choices; a corrupt or foreign stored record is ignored,
// re-tuned and overwritten.
import { describe, expect, it } from 'vitest';
import type { MatmulShape } from '../../src/gpu/autotune';
import { browserSuite } from './suite';

const shapes: MatmulShape[] = [
  { M: 16, N: 32, K: 24 },
  { M: 32, N: 16, K: 16, transB: true, bias: true },
];

describe('tuning results persist in the tab', () => {
  const suite = browserSuite();

  it('tunes once, reloads without re-timing, and re-tunes over a corrupt or foreign record', async () => {
    const ctx = await suite.browser.newContext();
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const open = async () => {
      await page.goto(`${suite.server.url}/tests/browser/tuning/index.html`);
      await page.waitForFunction(() => typeof window.runTune === 'function', undefined, { timeout: 60_000 });
    };
    const tune = () => page.evaluate((s) => window.runTune(s), shapes);

    await open();
    const first = await tune();
    expect(first.result).toEqual({ loaded: 0, timed: shapes.length, rejected: false });
    expect(first.choices.map((c) => c.shape).sort()).toEqual(['16x32x24', '32x16x16 tB bias']);
    for (const c of first.choices) expect(['naive', 'tiled']).toContain(c.variant);

    await page.reload();
    await open();
    const second = await tune();
    expect(second.result).toEqual({ loaded: shapes.length, timed: 0, rejected: false });
    expect(second.choices).toEqual(first.choices);
    expect(second.key).toBe(first.key);

    // Corrupt: not a record at all.
    await page.evaluate((k) => window.storeTuning(k, { format: 1, adapter: 'garbage', choices: 7 }), first.key);
    await page.reload();
    await open();
    const afterCorrupt = await tune();
    expect(afterCorrupt.result).toEqual({ loaded: 0, timed: shapes.length, rejected: true });

    // Foreign: a valid record of another adapter under this key (and a variant that would be wrong here).
    await page.evaluate(
      (k) =>
        window.storeTuning(k, {
          format: 1,
          adapter: { vendor: 'other', architecture: 'x', device: 'y', description: 'z' },
          kernels: 'g1-00000000',
          choices: [{ shape: '16x32x24', variant: 'naive', timingsMs: {} }],
        }),
      first.key,
    );
    await page.reload();
    await open();
    const afterForeign = await tune();
    expect(afterForeign.result).toEqual({ loaded: 0, timed: shapes.length, rejected: true });

    // The re-tune overwrote the bad record: the next start loads again.
    await page.reload();
    await open();
    const last = await tune();
    expect(last.result).toEqual({ loaded: shapes.length, timed: 0, rejected: false });
    expect(last.choices).toEqual(afterForeign.choices);
    expect(errors).toEqual([]);
    await ctx.close();
  }, 300_000);
});
