// Headless Chromium tabs over the browser's own WebRTC: tab <-> tab and tab <-> Node (node-datachannel), through
// the real signaling server, with the production src/net code loaded into the pages by Vite.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { SignalingServer } from '../../signaling-server/server';
import type { IncomingTensor } from '../../src/net/tensor';
import type { Transport } from '../../src/net/transport';
import { launchBrowser, startPageServer, type BrowserHandle, type PageServer } from '../browser/harness';
import { nextEvent, nodePeer, roomFingerprint, startServer } from './helpers';
import { firstMismatchAsync, patternBytesAsync } from './pattern';

const SIZES = [
  ['1 B', 1],
  ['255 KiB', 255 * 1024],
  ['1 MiB', 1024 * 1024],
  ['64 MiB', 64 * 1024 * 1024],
] as const;

let signaling: SignalingServer;
let pages: PageServer;
let browser: BrowserHandle;
const errors: string[] = [];

async function openTab(): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${pages.url}/tests/browser/net/index.html`);
  await page.waitForFunction(() => document.title === 'net-ready', undefined, { timeout: 30_000 });
  return page;
}

beforeAll(async () => {
  [signaling, pages, browser] = await Promise.all([startServer(), startPageServer(), launchBrowser()]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await pages?.close();
  await signaling?.close();
  expect(errors).toEqual([]);
});

describe('tab <-> tab (Chromium WebRTC)', () => {
  let a: Page;
  let b: Page;
  let tabA = '';
  let tabB = '';
  beforeAll(async () => {
    [a, b] = await Promise.all([openTab(), openTab()]);
    tabA = await a.evaluate(([url, fp]) => window.net.join(url, 'tabs', fp), [signaling.url, roomFingerprint('tabs')]);
    tabB = await b.evaluate(([url, fp]) => window.net.join(url, 'tabs', fp), [signaling.url, roomFingerprint('tabs')]);
    await a.evaluate((id) => window.net.dial(id), tabB);
    await b.evaluate((id) => window.net.waitForLink(id), tabA);
  }, 60_000);
  afterAll(async () => {
    await a?.evaluate(() => window.net.close());
    await b?.evaluate(() => window.net.close());
  });

  for (const [label, size] of SIZES) {
    it(`sends ${label} bit-identical`, async () => {
      const seed = size + 17;
      const [got] = await Promise.all([
        b.evaluate(([s, n, id]) => window.net.checkNext(id, s, n), [seed, size, tabA] as const),
        a.evaluate(([s, n, id]) => window.net.sendPattern(id, s, n), [seed, size, tabB] as const),
      ]);
      expect(got).toEqual({ mismatch: -1, size, meta: { seed } });
    }, 60_000);
  }

  it('round trip is measured over the data channel', async () => {
    const rtts = await a.evaluate((id) => window.net.rtt(id, 5), tabB);
    expect(rtts).toHaveLength(5);
    expect(Math.min(...rtts)).toBeLessThan(100);
  });
});

describe('tab <-> Node (Chromium WebRTC <-> node-datachannel)', () => {
  let tab: Page;
  let node: Awaited<ReturnType<typeof nodePeer>>;
  let link: Transport;
  const closes: string[] = [];
  beforeAll(async () => {
    tab = await openTab();
    node = await nodePeer(signaling, 'mixed', 'node-1');
    await tab.evaluate(([url, fp]) => window.net.join(url, 'mixed', fp), [signaling.url, roomFingerprint('mixed')]);
    const incoming = nextEvent<Transport>((h) => node.network.onConnection(h), 30_000);
    await tab.evaluate((id) => window.net.dial(id), node.signaling.peerId);
    link = await incoming;
    // A link that closes mid-suite fails every later case: say which side closed it and why.
    link.onClose((info) => closes.push(`node side: ${info.reason}: ${info.detail}`));
  }, 60_000);
  afterEach(async (ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    const tabSide = await tab.evaluate((n) => window.net.closeInfo(n), node.signaling.peerId).catch((e: unknown) => String(e));
    console.error(`[browser.test] link state after the failure: ${JSON.stringify({ closes, tabSide, node: link.stats() })}`);
  });
  afterAll(async () => {
    await tab?.evaluate(() => window.net.close());
    node?.close();
  });

  for (const [label, size] of SIZES) {
    it(`browser -> Node: ${label} bit-identical`, async () => {
      const seed = size + 3;
      const got = nextEvent<IncomingTensor>((h) => link.onTensor(h), 60_000);
      await tab.evaluate(([s, n, id]) => window.net.sendPattern(id, s, n), [seed, size, node.signaling.peerId] as const);
      const t = await got;
      expect(t.meta).toEqual({ seed });
      expect(await firstMismatchAsync(seed, t.bytes, size)).toBe(-1);
    }, 60_000);

    it(`Node -> browser: ${label} bit-identical`, async () => {
      const seed = size + 5;
      const check = tab.evaluate(([s, n, id]) => window.net.checkNext(id, s, n), [seed, size, node.signaling.peerId] as const);
      await link.sendTensor({ kind: 'act', dtype: 'u8', shape: [size], data: await patternBytesAsync(seed, size), meta: { seed } });
      expect(await check).toEqual({ mismatch: -1, size, meta: { seed } });
    }, 60_000);
  }

  it('the browser notices when the Node side closes', async () => {
    const id = node.signaling.peerId;
    await tab.evaluate((n) => window.net.rtt(n, 1), id);
    link.close();
    await tab.waitForFunction((n) => window.net.stats(n) && !window.net.isOpen(n), id, { timeout: 10_000 });
  });
});

describe('a tab keeps its identity (IndexedDB, src/ui/key-store.ts)', () => {
  it('the same id after a reload; another tab open at the same time gets its own', async () => {
    const tab = await openTab();
    const first = await tab.evaluate(() => window.net.identity('peer'));
    expect(first).toMatch(/^[0-9a-f]{32}$/);
    await tab.reload();
    await tab.waitForFunction(() => document.title === 'net-ready', undefined, { timeout: 30_000 });
    expect(await tab.evaluate(() => window.net.identity('peer'))).toBe(first);
    // A second tab of the same origin, open meanwhile: same key would mean same id, and the server would replace one.
    const other = await openTab();
    const second = await other.evaluate(() => window.net.identity('peer'));
    expect(second).toMatch(/^[0-9a-f]{32}$/);
    expect(second).not.toBe(first);
    // Roles have their own keys.
    expect(await tab.evaluate(() => window.net.identity('coordinator'))).not.toBe(first);
    // The key is stored non-extractable: the page cannot export the private key.
    const stored = await tab.evaluate(() => window.net.storedKey('peer', 0));
    expect(stored).toEqual({ extractable: false, type: 'private' });
    await other.close();
    await tab.close();
  }, 60_000);
});
