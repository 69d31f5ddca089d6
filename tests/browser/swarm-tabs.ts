// A swarm of contributor tabs for the browser resilience suites: a real signaling server, the Coordinator in Node, and
// headless Chromium tabs on the real contributor page (index.html?signal=...&room=...), each a SwarmPeer in the page
// with its stage's WGSL compute in the stage worker (SwiftShader WebGPU). Started and closed by vitest hooks (call
// tabSwarmSuite() inside `describe`). Tabs live in one browser context, so a reloaded tab gets its key slot (and id)
// and its IndexedDB back, as in a real browser.
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server';
import { Coordinator, type CoordinatorOptions, type StepReport } from '../../src/coordinator/coordinator';
import { broadcastStepReports } from '../../src/coordinator/step-report-broadcast';
import type { RunConfig } from '../../src/protocol/run-config';
import { evenStages } from '../../src/coordinator/run-builder';
import { DEFAULT_OPTIMIZER } from '../../src/model/stage';
import { data } from '../swarm/harness';
import { nodeWebSocket } from '../../src/net/rtc-node';
import { connectSwarm, type SwarmSignaling } from '../../src/protocol/control-codec';
import type { PeerSnapshot } from '../../src/ui/swarm-peer-view';
import { launchBrowser, startPageServer, type BrowserHandle, type PageServer } from './harness';

export const LOG = process.env.SWARM_LOG === '1' ? (s: string) => process.stderr.write(`${s}\n`) : undefined;

/** The browser swarm suites' run: 2 layers in 2 stages, B 2 x T 16, lr 1e-2 without warm-up, seed 7 (override any). */
export function tabRun(runId: string, steps: number, M: number, over: Partial<RunConfig> = {}): RunConfig {
  const schedule = { lr: 1e-2, minLr: 1e-3, warmup: 0, decaySteps: steps };
  return {
    runId,
    model: { n_layer: 2, n_head: 2, n_embd: 32, vocab_size: data().tokenizer!.vocabSize, block_size: 16 },
    stages: evenStages(2, 2),
    B: 2,
    T: 16,
    M,
    steps,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: schedule.lr },
    seed: 7,
    ...over,
  };
}

export interface TabSwarm {
  /** Page errors, console errors and failed loads of every tab (a test expects none). */
  readonly errors: string[];
  startCoordinator(
    run: RunConfig,
    room: string,
    minPeers: number,
    opts?: Partial<CoordinatorOptions>,
  ): Promise<{ sig: SwarmSignaling; coordinator: Coordinator }>;
  /** A contributor tab of `room` (join benchmark skipped); `label` names it in logs (its id is its key's). */
  openTab(room: string, label: string): Promise<Page>;
}

export function tabSwarmSuite(): TabSwarm {
  let signaling: SignalingServer | undefined;
  let pages: PageServer | undefined;
  let browser: BrowserHandle | undefined;
  let context: BrowserContext | undefined;
  const errors: string[] = [];
  const cleanup: (() => Promise<void> | void)[] = [];
  const coordinators = new Map<string, string>();

  beforeAll(async () => {
    [signaling, pages, browser] = await Promise.all([startSignalingServer({ host: '127.0.0.1', port: 0 }), startPageServer(), launchBrowser()]);
    context = await browser.newContext();
  }, 60_000);
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    errors.length = 0;
  });
  afterAll(async () => {
    await browser?.close();
    await pages?.close();
    await signaling?.close();
  });
  const need = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('tabSwarmSuite: used before its beforeAll ran');
    return x;
  };

  return {
    errors,
    async startCoordinator(run, room, minPeers, opts = {}) {
      const sig = await connectSwarm(need(signaling).url, { room, role: 'coordinator', WebSocket: nodeWebSocket });
      const coordinator = new Coordinator(sig, { run, minPeers, log: LOG, stepTimeoutMs: 60_000, readyTimeoutMs: 60_000, ...opts });
      broadcastStepReports(coordinator, sig);
      cleanup.push(() => {
        coordinator.close();
        sig.close();
      });
      coordinators.set(room, sig.coordinatorFingerprint);
      return { sig, coordinator };
    },
    async openTab(room, label) {
      const page = await need(context).newPage();
      page.on('pageerror', (e) => errors.push(`${label}: ${String(e)}`));
      page.on('console', (m) => {
        if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`${label} console: ${m.text()}`);
      });
      page.on('response', (r) => {
        if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) errors.push(`${label}: HTTP ${r.status()} ${r.url()}`);
      });
      if (LOG) page.on('console', (m) => LOG(`[tab ${label}] ${m.text()}`));
      const q = new URLSearchParams({
        signal: need(signaling).url,
        room,
        coordinator: coordinators.get(room) ?? '',
        throughput: '1000',
        ...(LOG ? { log: '1' } : {}),
      });
      await page.goto(`${need(pages).url}/index.html?${q}`);
      cleanup.push(() => page.close().catch(() => undefined));
      return page;
    },
  };
}

/**
 * The coordinator page's query for a tiny run (2 layers of 32 in 2 stages, 2 microbatches of 2 x 16 tokens, lr 0.01,
 * seed 7), with `over` added (room, steps, min-peers, ...).
 */
export function tinyCoordinatorQuery(over: Record<string, string>): URLSearchParams {
  return new URLSearchParams({
    stages: '2',
    microbatches: '2',
    'batch-size': '2',
    'n-layer': '2',
    'n-embd': '32',
    'n-head': '2',
    'block-size': '16',
    lr: '0.01',
    seed: '7',
    ...over,
  });
}

export const snapshot = (p: Page): Promise<PeerSnapshot> => p.evaluate(() => window.tabswarm!.snapshot());

/** A tab's peer id: its key's (src/ui/key-store.ts), known once the page has joined. */
export async function tabId(p: Page): Promise<string> {
  await p.waitForFunction(() => !!window.tabswarm?.snapshot().peerId, undefined, { timeout: 60_000, polling: 50 });
  const id = (await snapshot(p)).peerId;
  if (!id) throw new Error('the tab has no peer id');
  return id;
}

export async function waitForState(p: Page, states: string[], timeoutMs: number): Promise<PeerSnapshot> {
  await p.waitForFunction((ss) => !!window.tabswarm && ss.includes(window.tabswarm.snapshot().state), states, { timeout: timeoutMs, polling: 100 });
  return snapshot(p);
}

export function summary(reports: StepReport[]): string {
  return reports
    .map((r) => `${r.step}:${r.attempts}x loss ${r.loss.toFixed(4)} ${r.ms.toFixed(0)}ms [${r.members.map((m) => m.join(',')).join('|')}]`)
    .join('; ');
}
