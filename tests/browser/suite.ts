// The page server and browser of a browser test suite (tests/browser/harness.ts), started and closed by vitest hooks.
// Apart from the harness because bench/ uses the harness outside vitest.
import { afterAll, beforeAll } from 'vitest';
import { launchBrowser, startPageServer, type BrowserHandle, type PageServer } from './harness';

/** A suite's page server and browser: started before its tests (call inside `describe`), closed after them. */
export function browserSuite(): { readonly server: PageServer; readonly browser: BrowserHandle } {
  let server: PageServer | undefined;
  let browser: BrowserHandle | undefined;
  beforeAll(async () => {
    server = await startPageServer();
    browser = await launchBrowser();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });
  const started = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('browserSuite: used before its beforeAll ran');
    return x;
  };
  return {
    get server() {
      return started(server);
    },
    get browser() {
      return started(browser);
    },
  };
}
