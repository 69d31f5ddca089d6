// Every task the main threads of our pages' renderers ran while traced, with its wall time and its thread (CPU) time,
// from Chromium's own trace (CDP Tracing, categories 'toplevel' and 'blink.user_timing'). Why not PerformanceObserver
// 'longtask' alone: its durations are wall time, and on a loaded 2-core machine (vitest runs two files at once) a
// 100 ms task of ours reads 250-400 ms because the thread was descheduled. The thread time is the work in the task,
// what the page's long-task budget is about; the wall time is reported beside it.
//
// Only our pages count: headless Chromium also runs its own WebUI renderers (the new-tab page's omnibox components
// took 195 ms tasks here). A page is ours when it calls performance.mark(PAGE_MARK) (the test's init script does):
// the user-timing event carries its renderer's pid.
import type { Browser, CDPSession } from 'playwright-core';

export const PAGE_MARK = 'tabswarm-test-page';

export interface MainThreadTask {
  /** When it started, ms since the first traced event. */
  atMs: number;
  wallMs: number;
  threadMs: number;
}

interface TraceEvent {
  ph?: string;
  name?: string;
  pid?: number;
  tid?: number;
  ts?: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string };
}

const RUN_TASK = 'ThreadControllerImpl::RunTask';

/** Starts tracing `browser`; stop() ends it and returns the tasks of our pages' main threads (>= 10 ms wall). */
export async function traceMainThreadTasks(browser: Browser): Promise<{ stop(): Promise<MainThreadTask[]>; renderers(): number }> {
  const cdp: CDPSession = await browser.newBrowserCDPSession();
  const threadNames = new Map<string, string>();
  const ourPids = new Set<number>();
  const tasks: Array<MainThreadTask & { pid?: number; thread: string }> = [];
  let t0: number | undefined;
  // Events arrive in chunks while tracing; only what the answer needs is kept (a full trace of a minute of three
  // training tabs is hundreds of MB).
  cdp.on('Tracing.dataCollected', ({ value }: { value: TraceEvent[] }) => {
    for (const e of value) {
      const thread = `${e.pid}:${e.tid}`;
      if (e.ts !== undefined && e.ts > 0) t0 = Math.min(t0 ?? e.ts, e.ts);
      if (e.ph === 'M' && e.name === 'thread_name' && e.args?.name) threadNames.set(thread, e.args.name);
      else if (e.name === PAGE_MARK && e.pid !== undefined) ourPids.add(e.pid);
      else if (e.ph === 'X' && e.name === RUN_TASK && e.dur !== undefined && e.dur >= 10_000)
        tasks.push({ pid: e.pid, thread, atMs: e.ts ?? 0, wallMs: e.dur / 1000, threadMs: (e.tdur ?? e.dur) / 1000 });
    }
  });
  await cdp.send('Tracing.start', { transferMode: 'ReportEvents', traceConfig: { includedCategories: ['toplevel', 'blink.user_timing'] } });
  return {
    /** How many renderers marked themselves ours (after stop()). */
    renderers: () => ourPids.size,
    async stop() {
      const complete = new Promise<void>((resolve) => cdp.once('Tracing.tracingComplete', () => resolve()));
      await cdp.send('Tracing.end');
      await complete;
      await cdp.detach().catch(() => undefined);
      if (ourPids.size === 0) throw new Error(`the trace has no performance.mark('${PAGE_MARK}'): no page of ours was traced`);
      return tasks
        .filter((t) => t.pid !== undefined && ourPids.has(t.pid) && threadNames.get(t.thread) === 'CrRendererMain')
        .map(({ atMs, wallMs, threadMs }) => ({ atMs: (atMs - (t0 ?? atMs)) / 1000, wallMs, threadMs }));
    },
  };
}
