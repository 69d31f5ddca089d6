// Reusable headless-Chromium harness for browser tests (network and engine): launches the system Chromium
// (never downloads one) and serves the repository through Vite so pages can import TypeScript from src/ directly.
//
// Pages are served from http://127.0.0.1:<port>, a secure context, so WebGPU and WebRTC are available.

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../src/cli/chromium';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface BrowserHandle {
  browser: Browser;
  /** A fresh context with the microphone permission WebRTC needs to gather loopback candidates. */
  newContext(): Promise<BrowserContext>;
  /** A page in a shared default context (created on first use, same permissions). */
  newPage(): Promise<Page>;
  /** Closes the browser (its temporary profile goes with it). */
  close(): Promise<void>;
}

export async function launchBrowser(opts: { extraArgs?: string[] } = {}): Promise<BrowserHandle> {
  // chromium.launch() gives every browser a fresh temporary profile (it refuses --user-data-dir) and removes it.
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS, ...(opts.extraArgs ?? [])],
    // Playwright passes its own --headless; ours (new headless) is in the args.
    headless: true,
  });
  const newContext = () => browser.newContext({ permissions: ['microphone'] });
  let shared: Promise<BrowserContext> | null = null;
  return {
    browser,
    newContext,
    async newPage() {
      shared ??= newContext();
      return (await shared).newPage();
    },
    async close() {
      await browser.close().catch(() => undefined);
    },
  };
}

export interface PageServer {
  /** Origin without a trailing slash, e.g. http://127.0.0.1:41234; pages are `${url}/tests/browser/...`. */
  url: string;
  close(): Promise<void>;
}

/** Vite dev server over the repository root on an ephemeral loopback port; no file watching, no HMR. */
export async function startPageServer(opts: { root?: string } = {}): Promise<PageServer> {
  const server: ViteDevServer = await createServer({
    configFile: false,
    root: opts.root ?? REPO_ROOT,
    logLevel: 'error',
    clearScreen: false,
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false, watch: null },
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite did not bind a TCP port');
  return { url: `http://127.0.0.1:${address.port}`, close: () => server.close() };
}

/** Distinct colours of a PNG screenshot, counted by a page (a canvas decodes it): a blank page has one or two. */
export async function distinctColours(page: Page, png: Buffer): Promise<number> {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    [c.width, c.height] = [img.width, img.height];
    const g = c.getContext('2d');
    if (!g) return 0;
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<number>();
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, png.toString('base64'));
}
