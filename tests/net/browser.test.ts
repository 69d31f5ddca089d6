// Headless Chromium tabs over the browser's own WebRTC: tab <-> tab and tab <-> Node (node-datachannel), through
// the real signaling server, with the production src/net code loaded into the pages by Vite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { SignalingServer } from '../../signaling-server/server';
import type { IncomingTensor } from '../../src/net/tensor';
import type { Transport } from '../../src/net/transport';
import { launchBrowser, startPageServer, type BrowserHandle, type PageServer } from '../browser/harness';
import { nextEvent, nodePeer, startServer } from './helpers';
import { firstMismatch, patternBytes } from './pattern';

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
  beforeAll(async () => {
    [a, b] = await Promise.all([openTab(), openTab()]);
    await a.evaluate(([url]) => window.net.join(url, 'tabs', 'tab-a'), [signaling.url]);
    await b.evaluate(([url]) => window.net.join(url, 'tabs', 'tab-b'), [signaling.url]);
    await a.evaluate(() => window.net.dial('tab-b'));
    await b.evaluate(() => window.net.waitForLink('tab-a'));
  }, 60_000);
  afterAll(async () => {
    await a?.evaluate(() => window.net.close());
    await b?.evaluate(() => window.net.close());
  });

  for (const [label, size] of SIZES) {
    it(`sends ${label} bit-identical`, async () => {
      const seed = size + 17;
      const [got] = await Promise.all([
        b.evaluate(([s, n]) => window.net.checkNext('tab-a', s, n), [seed, size]),
        a.evaluate(([s, n]) => window.net.sendPattern('tab-b', s, n), [seed, size]),
      ]);
      expect(got).toEqual({ mismatch: -1, size, meta: { seed } });
    }, 60_000);
  }

  it('round trip is measured over the data channel', async () => {
    const rtts = await a.evaluate(() => window.net.rtt('tab-b', 5));
    expect(rtts).toHaveLength(5);
    expect(Math.min(...rtts)).toBeLessThan(100);
  });
});

describe('tab <-> Node (Chromium WebRTC <-> node-datachannel)', () => {
  let tab: Page;
  let node: Awaited<ReturnType<typeof nodePeer>>;
  let link: Transport;
  beforeAll(async () => {
    tab = await openTab();
    node = await nodePeer(signaling, 'mixed', 'node-1');
    await tab.evaluate(([url]) => window.net.join(url, 'mixed', 'tab-1'), [signaling.url]);
    const incoming = nextEvent<Transport>((h) => node.network.onConnection(h), 30_000);
    await tab.evaluate(() => window.net.dial('node-1'));
    link = await incoming;
  }, 60_000);
  afterAll(async () => {
    await tab?.evaluate(() => window.net.close());
    node?.close();
  });

  for (const [label, size] of SIZES) {
    it(`browser -> Node: ${label} bit-identical`, async () => {
      const seed = size + 3;
      const got = nextEvent<IncomingTensor>((h) => link.onTensor(h), 60_000);
      await tab.evaluate(([s, n]) => window.net.sendPattern('node-1', s, n), [seed, size]);
      const t = await got;
      expect(t.meta).toEqual({ seed });
      expect(firstMismatch(seed, t.bytes, size)).toBe(-1);
    }, 60_000);

    it(`Node -> browser: ${label} bit-identical`, async () => {
      const seed = size + 5;
      const check = tab.evaluate(([s, n]) => window.net.checkNext('node-1', s, n), [seed, size]);
      await link.sendTensor({ kind: 'act', dtype: 'u8', shape: [size], data: patternBytes(seed, size), meta: { seed } });
      expect(await check).toEqual({ mismatch: -1, size, meta: { seed } });
    }, 60_000);
  }

  it('the browser notices when the Node side closes', async () => {
    await tab.evaluate(() => window.net.rtt('node-1', 1));
    link.close();
    await tab.waitForFunction(() => window.net.stats('node-1') && !window.net.isOpen('node-1'), undefined, { timeout: 10_000 });
  });
});
