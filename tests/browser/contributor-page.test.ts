// Issue 11, the contributor page (docs/deployment.md "Pages"): real contributor tabs (headless Chromium, SwiftShader
// WebGPU in each tab's stage worker) in a small swarm run by CoordinatorRun (the demo's and the CLI's coordinator)
// over a real signaling server. Every tab, stage 0 included, shows the RUN's loss, equal to the coordinator's report;
// pause leaves the swarm (the run goes on with the others) and resume trains again; leave ends the stage worker;
// no main-thread task over 200 ms of work while joining and training (Chromium's trace: thread time, the wall time
// and PerformanceObserver 'longtask' reported beside it; tests/browser/main-thread-tasks.ts); at 390x844 the page
// has no horizontal scroll, its key elements are visible and the screenshot is not blank. The solo page shows
// autotune progress, a second Start loads the stored tuning instead of timing it, and Stop ends its worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server';
import { CoordinatorRun } from '../../src/coordinator/run-lifecycle';
import { nodeWebSocket } from '../../src/net/rtc-node';
import { distinctColours, launchBrowser, startPageServer, type BrowserHandle, type PageServer } from './harness';
import { LOG, snapshot, tabId, tabRun } from './swarm-tabs';
import { PAGE_MARK, traceMainThreadTasks } from './main-thread-tasks';

declare global {
  interface Window {
    __longTasks: number[];
    __workers: { made: number; ended: number };
  }
}

/** Before any page script: every long task, and the Workers made and terminated. */
function instrument(mark: string): void {
  performance.mark(mark); // tells the trace which renderers are ours (main-thread-tasks.ts)
  window.__longTasks = [];
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) window.__longTasks.push(e.duration);
  }).observe({ type: 'longtask', buffered: true });
  window.__workers = { made: 0, ended: 0 };
  const W = window.Worker;
  const counts = window.__workers;
  window.Worker = class extends W {
    // The short-lived tokens worker (src/ui/worker-tokens.ts) is not counted: the stage and engine workers are.
    private readonly counted: boolean;
    constructor(url: string | URL, o?: WorkerOptions) {
      super(url, o);
      this.counted = o?.name !== 'tabswarm-tokens';
      if (this.counted) counts.made++;
    }
    override terminate(): void {
      if (this.counted) counts.ended++;
      super.terminate();
    }
  };
}

const uiState = (p: Page) => p.evaluate(() => document.querySelector('tabswarm-peer')?.getAttribute('data-state') ?? null);
/** Waits for the tab's data-state; on a timeout the error carries the tab's state and log. */
/** The coordinator's last lines (kept always, so a failure on CI says what the run was doing). */
const coordinatorTail: string[] = [];
const coordinatorLog = (line: string): void => {
  coordinatorTail.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  if (coordinatorTail.length > 40) coordinatorTail.shift();
  LOG?.(line);
};
async function waitUi(p: Page, s: string, ms = 60_000): Promise<void> {
  try {
    await p.waitForFunction((x) => document.querySelector('tabswarm-peer')?.getAttribute('data-state') === x, s, { timeout: ms, polling: 100 });
  } catch (e) {
    const snap = await snapshot(p);
    throw new Error(
      `tab never reached ${s}: ${snap.uiState} (${snap.state}) ${snap.error}\n${snap.log.slice(-25).join('\n')}\ncoordinator:\n${coordinatorTail.join('\n')}`,
      { cause: e },
    );
  }
}
const click = (p: Page, id: string) => p.locator(`tabswarm-peer #${id}`).click();

describe('contributor page', () => {
  let signaling: SignalingServer | undefined;
  let pages: PageServer | undefined;
  let browser: BrowserHandle | undefined;
  let ctx: BrowserContext | undefined;
  const errors: string[] = [];
  beforeAll(async () => {
    [signaling, pages, browser] = await Promise.all([startSignalingServer({ host: '127.0.0.1', port: 0 }), startPageServer(), launchBrowser()]);
    ctx = await browser.newContext();
    await ctx.addInitScript(instrument, PAGE_MARK);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await pages?.close();
    await signaling?.close();
  });
  const need = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('used before beforeAll');
    return x;
  };
  const open = async (label: string, query: string): Promise<Page> => {
    const page = await need(ctx).newPage();
    page.on('pageerror', (e) => errors.push(`${label}: ${String(e)}`));
    const log = LOG;
    if (log) page.on('console', (m) => log(`[${label}] ${m.text()}`));
    await page.goto(`${need(pages).url}/index.html?${query}`);
    return page;
  };

  it('3 tabs, 2 stages: every tab shows the run loss; pause/resume/leave; no long task; fits 390 px', async () => {
    // Long enough that it cannot end before the paused tab is back (a loaded CI machine steps slowly and a rejoin
    // waits for a step boundary); the test stops it once leave is checked.
    const run = tabRun('ui-run', 400, 3);
    const room = 'uirun';
    const s = await CoordinatorRun.start({ url: need(signaling).url, room, run, minPeers: 3, WebSocket: nodeWebSocket, log: coordinatorLog });
    try {
      const q = new URLSearchParams({ signal: need(signaling).url, room, coordinator: s.sig.coordinatorFingerprint, throughput: '1000' });
      const trace = await traceMainThreadTasks(need(browser).browser);
      const t0 = Date.now();
      const marks: string[] = [];
      const mark = (what: string) => marks.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const tabs: Page[] = [];
      for (let i = 0; i < 3; i++) tabs.push(await open(`tab-${i}`, q.toString()));
      const ids = await Promise.all(tabs.map((t) => tabId(t)));
      const atStep = async (k: number) => {
        while (s.view.view.step < k) await new Promise((r) => setTimeout(r, 100));
      };
      mark('tabs open');
      await atStep(3);
      mark('step 3');

      // The run's loss on every tab (stage 0 too), equal to the coordinator's report of the step it shows.
      const snaps = await Promise.all(tabs.map((t) => snapshot(t)));
      expect(new Set(snaps.map((x) => x.stage))).toEqual(new Set([0, 1]));
      for (const x of snaps) {
        expect(x.runStep).toBeGreaterThanOrEqual(1);
        expect(x.runLoss).not.toBeNull();
        expect(x.runLoss).toBe(s.view.view.reports[x.runStep - 1].loss);
        expect(['training', 'syncing']).toContain(x.uiState);
        expect(x.cpuAdapter).toBe(true); // SwiftShader
      }

      // 390x844: no horizontal scroll, key elements visible, a screenshot with real content.
      const phone = tabs[0];
      mark('390 px');
      await phone.setViewportSize({ width: 390, height: 844 });
      await phone.waitForTimeout(300);
      expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      for (const sel of ['#pause', '#leave', '[data-k=loss]', '[data-k=state]', '[data-k=contribution]', '[data-k=cpu]', '[data-k=swarm]'])
        await expect(phone.locator(`tabswarm-peer ${sel}`).isVisible(), sel).resolves.toBe(true);
      const png = await phone.screenshot({ path: process.env.TABSWARM_SHOTS ? `${process.env.TABSWARM_SHOTS}/contributor-390.png` : undefined });
      expect(await distinctColours(phone, png)).toBeGreaterThan(20);

      // Pause a replica of the stage that has two: it leaves, the run goes on with the others; resume trains again.
      const members = s.view.view.stages.map((st) => st.members);
      const shared = members.find((m) => m.length === 2);
      if (!shared) throw new Error(`no stage with 2 replicas: ${JSON.stringify(members)}`);
      const pausing = tabs[ids.indexOf(shared[1])];
      mark('pause');
      await click(pausing, 'pause');
      await waitUi(pausing, 'paused');
      const pausedAt = s.view.view.step;
      await atStep(pausedAt + 2);
      expect(await uiState(pausing)).toBe('paused');
      expect((await pausing.evaluate(() => window.__workers)).ended).toBe(0); // the worker is kept
      mark('resume');
      await click(pausing, 'resume');
      await waitUi(pausing, 'training', 90_000);
      const resumed = await snapshot(pausing);
      expect(resumed.peerId).toBe(shared[1]); // same key

      // Leave: state left, the stage worker gone; the run goes on with the others (two more steps), then is stopped.
      mark('leave');
      await click(pausing, 'leave');
      await waitUi(pausing, 'left');
      // The stage worker ends once its device is released (bounded: 2 s).
      await pausing.waitForFunction(() => window.__workers.ended === window.__workers.made, undefined, { timeout: 10_000, polling: 100 });
      expect((await pausing.evaluate(() => window.__workers)).made).toBe(1);
      const leftAt = s.view.view.step;
      await atStep(leftAt + 2);
      s.stop('the test is done');
      const reports = await s.coordinator.finished();
      expect(reports.length).toBeGreaterThanOrEqual(leftAt + 2);
      expect(reports.map((r) => r.step)).toEqual(Array.from({ length: reports.length }, (_, i) => i));

      // The final loss on the tabs that stayed is the coordinator's last.
      const last = reports.length;
      for (const t of tabs.filter((t) => t !== pausing)) {
        await t.waitForFunction((n) => window.tabswarm?.snapshot().runStep === n, last, { timeout: 10_000, polling: 100 });
        expect((await snapshot(t)).runLoss).toBe(reports[last - 1].loss);
      }

      // Long tasks while joining and training, every tab: the budget is on the work in a task (thread time); the wall
      // time also counts the time a loaded machine kept the thread waiting.
      const tasks = await trace.stop();
      expect(tasks.length).toBeGreaterThan(0); // the trace saw the tabs' main threads (module loading alone is >= 10 ms)
      const worst = tasks.reduce((a, t) => (t.threadMs > a.threadMs ? t : a));
      const longWall = Math.max(0, ...(await Promise.all(tabs.map((t) => t.evaluate(() => window.__longTasks)))).flat());
      console.log(
        `contributor tabs: longest main-thread task ${worst.threadMs.toFixed(0)} ms of thread time (${worst.wallMs.toFixed(0)} ms wall) in ${trace.renderers()} renderer(s); ` +
          `${marks.join(', ')}; longest 'longtask' entry ${longWall.toFixed(0)} ms wall; ${tasks.length} tasks >= 10 ms; the longest at ` +
          [...tasks]
            .sort((a, b) => b.threadMs - a.threadMs)
            .slice(0, 5)
            .map((t) => `${(t.atMs / 1000).toFixed(1)} s: ${t.threadMs.toFixed(0)}/${t.wallMs.toFixed(0)} ms`)
            .join(', '),
      );
      expect(worst.threadMs).toBeLessThanOrEqual(200);
      expect(errors).toEqual([]);
    } finally {
      s.close();
    }
  }, 240_000);

  it('solo page: autotune progress, a second Start loads the stored tuning, Stop ends the worker', async () => {
    const page = await open('solo', 'n_layer=1&n_embd=32&block=16&batch=2&steps=3');
    const t0 = Date.now();
    await page.locator('tabswarm-engine #start').click();
    await page.locator('tabswarm-engine [data-k=progress]').waitFor({ timeout: 30_000 });
    const firstProgressMs = Date.now() - t0;
    // What the old page showed first: nothing until start() (tuning included) had returned.
    await page.waitForFunction(
      () => /timed now/.test(document.querySelector('tabswarm-engine')?.shadowRoot?.querySelector('[data-k=tuning]')?.textContent ?? ''),
      undefined,
      {
        timeout: 240_000,
        polling: 100,
      },
    );
    const startedMs = Date.now() - t0;
    await page.waitForFunction(
      () => document.querySelector('tabswarm-engine')?.shadowRoot?.querySelector('[data-k=step]')?.textContent?.trim() === '3',
      undefined,
      {
        timeout: 240_000,
        polling: 200,
      },
    );
    const tuning1 = await page.locator('tabswarm-engine [data-k=tuning]').textContent();
    console.log(
      `solo page: first progress ${firstProgressMs} ms after Start, start-up (tuning) done after ${startedMs} ms; first tuning: ${tuning1}`,
    );
    // A gross-regression guard in wall time (it was 16.9 s before the start-up went step by step; 1-2 s idle): a
    // loaded 2-core CI machine once took 5.6 s.
    expect(firstProgressMs).toBeLessThan(10_000);
    expect(tuning1).toMatch(/0 shapes loaded .*, [1-9]\d* timed now/);
    await page.locator('tabswarm-engine #start', { hasText: 'Start' }).waitFor();

    const t1 = Date.now();
    await page.locator('tabswarm-engine #start').click();
    await page.waitForFunction(
      () => /timed now/.test(document.querySelector('tabswarm-engine')?.shadowRoot?.querySelector('[data-k=tuning]')?.textContent ?? ''),
      undefined,
      {
        timeout: 60_000,
        polling: 100,
      },
    );
    const tuning2 = await page.locator('tabswarm-engine [data-k=tuning]').textContent();
    console.log(`solo page: second Start ready in ${Date.now() - t1} ms; tuning: ${tuning2}`);
    expect(tuning2).toMatch(/[1-9]\d* shapes loaded .*, 0 timed now/);
    // Stop while it trains: the worker ends; two Starts made two workers, both ended.
    await page
      .locator('tabswarm-engine #start', { hasText: 'Stop' })
      .click()
      .catch(() => undefined);
    await page.waitForFunction(() => window.__workers.ended === window.__workers.made, undefined, { timeout: 10_000 });
    expect(await page.evaluate(() => window.__workers)).toEqual({ made: 2, ended: 2 });
    expect(errors).toEqual([]);
  }, 300_000);
});
