// The swarm in browser tabs, end to end: a real signaling server, the coordinator in Node, and headless Chromium
// tabs running the real contributor page (index.html?signal=...&room=...): each tab is a SwarmPeer in the page
// (Chromium WebRTC) with its stage's WGSL compute in the stage worker (SwiftShader WebGPU).
//   1. 3 tabs, 2 stages (2 + 1 replicas): K steps, the loss falls, every tab shows stage, step and loss.
//   2. 2 stages x 2 replicas; a first-stage replica's tab is closed mid-step: the coordinator re-runs the step on
//      its twin (the step is not lost) and all K steps finish.
//   3. A tab joins mid-run and copies its stage's weights + AdamW state from a live tab.
//   4. Compressed boundaries (bottleneck + int4) through the stage workers, against the Node engine.
//   5. Local-steps mode: two replicas in tabs run the outer sync through their stage workers.
//   6. The coordinator page (coordinator.html, the Coordinator in a tab) runs 2 contributor tabs through a short run.
// SWARM_LOG=1 prints the coordinator's and the tabs' logs.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server';
import { Coordinator, type StepReport } from '../../src/coordinator/coordinator';
import { evenStages } from '../../src/coordinator/run-builder';
import type { RunConfig } from '../../src/protocol/run-config';
import { loadCorpus } from '../../src/model/corpus-node';
import { Dataset, sampleBatch } from '../../src/model/data';
import { Trainer } from '../../src/model/trainer';
import { runEngineOptions } from '../../src/coordinator/run-model';
import { CharTokenizer } from '../../src/model/tokenizer';
import { nodeWebSocket } from '../../src/net/rtc-node';
import { connectSwarm } from '../../src/protocol/control-codec';
import { broadcastStepReports } from '../../src/coordinator/step-report-broadcast';
import { verifyLedger } from '../../src/coordinator/ledger-export';
import type { CoordinatorSnapshot } from '../../src/ui/coordinator-page';
import type { PeerSnapshot } from '../../src/ui/swarm-peer-view';
import { gpuRuntime } from '../support/gpu';
import { launchBrowser, startPageServer, type BrowserHandle, type PageServer } from './harness';
import { tabRun } from './swarm-tabs';

const LOG = process.env.SWARM_LOG === '1' ? (s: string) => process.stderr.write(`${s}\n`) : undefined;

let signaling: SignalingServer;
let pages: PageServer;
let browser: BrowserHandle;
const errors: string[] = [];
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  [signaling, pages, browser] = await Promise.all([startSignalingServer({ host: '127.0.0.1', port: 0 }), startPageServer(), launchBrowser()]);
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

async function startCoordinator(run: RunConfig, room: string, minPeers: number) {
  const sig = await connectSwarm(signaling.url, { room, role: 'coordinator', WebSocket: nodeWebSocket });
  const coordinator = new Coordinator(sig, { run, minPeers, log: LOG, stepTimeoutMs: 60_000, readyTimeoutMs: 60_000 });
  broadcastStepReports(coordinator, sig);
  cleanup.push(() => {
    coordinator.close();
    sig.close();
  });
  coordinators.set(room, sig.coordinatorFingerprint);
  return { sig, coordinator };
}

/** Coordinator key fingerprint per room (startCoordinator's, or the coordinator page's). */
const coordinators = new Map<string, string>();

/**
 * A tab on the contributor page in swarm mode (join benchmark skipped: throughput given). `peerId` labels the tab in
 * logs; its real id comes from its key (src/ui/key-store.ts).
 */
async function openTab(room: string, peerId: string, path = 'index.html', extra: Record<string, string> = {}): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(`${peerId}: ${String(e)}`));
  page.on('console', (m) => {
    // Failed loads are checked by URL below (the browser's own /favicon.ico probe is not ours).
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`${peerId} console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) errors.push(`${peerId}: HTTP ${r.status()} ${r.url()}`);
  });
  if (LOG) page.on('console', (m) => LOG(`[tab ${peerId}] ${m.text()}`));
  const coordinator = coordinators.get(room) ?? '';
  const q = new URLSearchParams({ signal: signaling.url, room, coordinator, throughput: '1000', ...(LOG ? { log: '1' } : {}), ...extra });
  await page.goto(`${pages.url}/${path}?${q}`);
  cleanup.push(() => page.close().catch(() => undefined));
  return page;
}

/** The single-peer engine in Node (lavapipe) on the same init and batches: its per-step losses. */
async function referenceLosses(run: RunConfig): Promise<number[]> {
  const text = loadCorpus();
  const data = Dataset.fromText(text, CharTokenizer.fromCorpus(text), { valFraction: 0.1 });
  const rt = await gpuRuntime();
  // A compressed run's engine is split at the run's boundaries with its codecs and bottleneck (runEngineOptions).
  const tr = await Trainer.create(rt, runEngineOptions(rt, run));
  const losses: number[] = [];
  for (let s = 0; s < run.steps; s++) {
    const micro = Array.from({ length: run.M }, (_, k) => sampleBatch(data.train, { seed: run.seed, step: s, micro: k, B: run.B, T: run.T }));
    losses.push((await tr.step(s, micro)).loss);
  }
  return losses;
}

const snapshot = (p: Page): Promise<PeerSnapshot> => p.evaluate(() => window.tabswarm!.snapshot());

/** A tab's peer id: its key's (src/ui/key-store.ts), known once the page has joined. */
async function tabId(p: Page): Promise<string> {
  await p.waitForFunction(() => !!window.tabswarm?.snapshot().peerId, undefined, { timeout: 60_000, polling: 50 });
  const id = (await snapshot(p)).peerId;
  if (!id) throw new Error('the tab has no peer id');
  return id;
}

async function waitForState(p: Page, states: string[], timeoutMs: number): Promise<PeerSnapshot> {
  await p.waitForFunction((ss) => !!window.tabswarm && ss.includes(window.tabswarm.snapshot().state), states, { timeout: timeoutMs, polling: 100 });
  return snapshot(p);
}

function summary(reports: StepReport[]): string {
  return reports
    .map((r) => `${r.step}:${r.attempts}x loss ${r.loss.toFixed(4)} ${r.ms.toFixed(0)}ms [${r.members.map((m) => m.join(',')).join('|')}]`)
    .join('; ');
}

describe('swarm in browser tabs', () => {
  it('3 tabs, 2 stages (2 + 1): trains K steps and the loss falls', async () => {
    const K = 4;
    const run = tabRun('tabs-3', K, 4);
    const room = 'tabs3';
    const t0 = performance.now();
    const { coordinator } = await startCoordinator(run, room, 3);
    const ids = ['tab-a', 'tab-b', 'tab-c'];
    const tabs: Page[] = [];
    for (const id of ids) tabs.push(await openTab(room, id));
    const reports = await coordinator.finished();
    const ms = performance.now() - t0;
    console.log(`3 tabs: ${summary(reports)} (total ${ms.toFixed(0)} ms incl. page loads)`);
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    for (const r of reports) {
      expect(r.attempts).toBe(1);
      expect(r.replicasAgree).toBe(true);
      expect(Number.isFinite(r.loss)).toBe(true);
    }
    expect(reports[K - 1].loss).toBeLessThan(reports[0].loss);
    // Same numbers as the single-peer engine in Node (SwiftShader vs lavapipe: float tolerance as in engine-worker).
    const ref = await referenceLosses(run);
    console.log(`3 tabs vs Node single-peer engine: ${reports.map((r, i) => `${r.loss.toFixed(5)}/${ref[i].toFixed(5)}`).join(' ')}`);
    for (let i = 0; i < K; i++) expect(Math.abs(reports[i].loss - ref[i])).toBeLessThan(2e-3);
    const members = reports[K - 1].members;
    expect(members.map((m) => m.length).sort()).toEqual([1, 2]);

    const snaps = await Promise.all(tabs.map((p) => waitForState(p, ['finished'], 30_000)));
    for (const s of snaps) {
      expect(s.error).toBe('');
      expect(s.adapter?.key).toBe('swiftshader');
      expect(s.stage).not.toBeNull();
      expect(s.step).toBe(K);
      expect(s.loss).toBeCloseTo(reports[K - 1].loss, 5);
      expect(s.losses.length).toBe(K);
      expect(s.forward).toBeGreaterThan(0);
      expect(s.tokensPerSec).toBeGreaterThan(0);
    }
    for (let st = 0; st < 2; st++) expect(snaps.filter((s) => s.stage === st)).toHaveLength(members[st].length);
    // The page renders what the snapshot says.
    const field = (p: Page, k: string) => p.locator(`tabswarm-peer [data-k="${k}"]`).innerText();
    expect(await field(tabs[0], 'step')).toBe(`${K} / ${K}`);
    expect(await field(tabs[0], 'adapter')).toContain('swiftshader');
    expect(await field(tabs[0], 'state')).toBe('left'); // the page's state (docs/deployment.md "Pages"): the run finished, the tab left
    expect(await field(tabs[0], 'loss')).toBe(reports[K - 1].loss.toFixed(4));
    expect(await tabs[0].locator('tabswarm-peer tabswarm-loss-chart polyline').count()).toBe(1);
    expect(errors).toEqual([]);
  }, 150_000);

  it('2 stages x 2 tabs: a first-stage tab is closed mid-step, the step is re-run on its twin', async () => {
    const K = 3;
    const run = tabRun('tabs-churn', K, 4);
    const room = 'tabschurn';
    const { sig, coordinator } = await startCoordinator(run, room, 4);
    const ids = ['tab-p', 'tab-q', 'tab-r', 'tab-s'];
    // By peer id (the tab's key's): the coordinator's messages name peers by it.
    const tabs = new Map<string, Page>();
    for (const id of ids) {
      const page = await openTab(room, id);
      await page.waitForFunction(() => !!window.tabswarm?.snapshot().peerId, undefined, { timeout: 60_000, polling: 50 });
      tabs.set((await snapshot(page)).peerId!, page);
    }
    const assigned = new Map<string, number>();
    coordinator.events.on('assigned', ({ peerId, stage }) => assigned.set(peerId, stage));
    const restarts: { step: number; attempt: number; reason: string }[] = [];
    coordinator.events.on('restart', (r) => restarts.push(r));

    // Close the second first-stage replica's tab as soon as it reports its first finished microbatch of step 1:
    // its contribution to step 1 dies with it (the step's reduce has not happened yet).
    let victim: string | undefined;
    let closedAt: { step: number; mb: number } | undefined;
    let closing: Promise<void> | undefined;
    sig.on('control', ({ from, msg }) => {
      if (closedAt || msg.type !== 'mb-done' || msg.step !== 1) return;
      const firsts = coordinator.members()[0];
      if (firsts.length < 2 || from !== firsts[1]) return;
      victim = from;
      closedAt = { step: msg.step, mb: msg.mb };
      closing = tabs.get(from)!.close();
    });

    const reports = await coordinator.finished();
    await closing;
    console.log(
      `churn tabs: closed ${victim} at step ${closedAt?.step} mb ${closedAt?.mb}; restarts ${JSON.stringify(restarts)}; ${summary(reports)}`,
    );
    expect(closedAt?.step).toBe(1);
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
    expect(reports[0].members.map((m) => m.length)).toEqual([2, 2]);
    expect(reports[1].attempts).toBe(2); // re-run, not lost
    expect(restarts.some((r) => r.step === 1 && r.reason.includes(`${victim} vanished`))).toBe(true);
    const twin = reports[0].members[0].find((p) => p !== victim)!;
    expect(reports[1].members[0]).toEqual([twin]);
    expect(reports[2].members[0]).toEqual([twin]);
    expect(reports[2].members[1]).toHaveLength(2);
    for (const r of reports) expect(r.replicasAgree).toBe(true);
    expect(reports.every((r) => Number.isFinite(r.loss))).toBe(true);
    // Nothing lost or counted twice: the losses are the single-peer engine's on the same batches.
    const ref = await referenceLosses(run);
    console.log(`churn tabs vs Node single-peer engine: ${reports.map((r, i) => `${r.loss.toFixed(5)}/${ref[i].toFixed(5)}`).join(' ')}`);
    for (let i = 0; i < K; i++) expect(Math.abs(reports[i].loss - ref[i])).toBeLessThan(2e-3);

    const live = [...tabs.entries()].filter(([id]) => id !== victim);
    const snaps = await Promise.all(live.map(([, p]) => waitForState(p, ['finished'], 30_000)));
    for (const s of snaps) {
      expect(s.error).toBe('');
      expect(s.step).toBe(K);
    }
    // The twin took over the victim's microbatches: it ran all M of step 1's second attempt and step 2.
    const twinSnap = snaps[live.findIndex(([id]) => id === twin)];
    expect(twinSnap.forward).toBeGreaterThanOrEqual(2 + 4 + 4);
    expect(errors).toEqual([]);
  }, 180_000);

  it('a tab joins mid-run: it copies its stage state from a live tab (through both stage workers) and trains on, bitwise in sync', async () => {
    const K = 30;
    const run = tabRun('tabs-join', K, 2);
    const room = 'tabsjoin';
    const { coordinator } = await startCoordinator(run, room, 2);
    const sources: string[] = [];
    for (const id of ['tab-j0', 'tab-j1']) sources.push(await tabId(await openTab(room, id)));
    const joins: string[][] = [];
    coordinator.events.on('membership', (m) => joins.push(m.joins));
    let joiner: Promise<Page> | undefined;
    coordinator.events.on('step', (r) => {
      if (r.step === 0) joiner ??= openTab(room, 'tab-j2');
    });
    const reports = await coordinator.finished();
    const page = await joiner!;
    const j2 = await tabId(page);
    const joinedAt = reports.findIndex((r) => r.members.flat().includes(j2));
    console.log(`join: tab-j2 first trained step ${joinedAt}; joins ${JSON.stringify(joins)}; last ${summary(reports.slice(-1))}`);
    expect(reports.map((r) => r.step)).toEqual(Array.from({ length: K }, (_, i) => i));
    expect(joins.flat()).toContain(j2);
    expect(joinedAt).toBeGreaterThan(0);
    expect(joinedAt).toBeLessThan(K - 1);
    // From the join on, the joiner's stage has two replicas whose params digests agree after every update.
    for (const r of reports.slice(joinedAt)) {
      expect(r.members.flat()).toContain(j2);
      expect(r.replicasAgree).toBe(true);
    }
    const snap = await waitForState(page, ['finished'], 30_000);
    expect(snap.error).toBe('');
    expect(snap.step).toBe(K);
    expect(snap.log.some((l) => sources.some((src) => new RegExp(`received stage \\d state from ${src}`).test(l)))).toBe(true);
    expect(errors).toEqual([]);
  }, 120_000);

  it('compressed boundaries in tabs: a passthrough bottleneck + int4 payloads encoded and decoded in the stage workers', async () => {
    const K = 3;
    const run: RunConfig = {
      ...tabRun('tabs-compress', K, 2),
      compress: {
        act: { kind: 'int4', block: 32, rounding: 'stochastic' },
        grad: { kind: 'int4', block: 32, rounding: 'stochastic' },
        bottleneck: { width: 8, passthrough: true },
        sync: { mode: 'per-step' },
      },
    };
    const room = 'tabscompress';
    const { coordinator } = await startCoordinator(run, room, 2);
    for (const id of ['tab-c0', 'tab-c1']) await openTab(room, id);
    const reports = await coordinator.finished();
    console.log(`compressed tabs: ${summary(reports)}`);
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
    for (const r of reports) expect(r.attempts).toBe(1);
    // The same numbers as the Node engine with the same boundaries, codecs and bottleneck (SwiftShader vs lavapipe).
    const ref = await referenceLosses(run);
    console.log(`compressed tabs vs Node engine: ${reports.map((r, i) => `${r.loss.toFixed(5)}/${ref[i].toFixed(5)}`).join(' ')}`);
    for (let i = 0; i < K; i++) expect(Math.abs(reports[i].loss - ref[i])).toBeLessThan(2e-3);
    expect(errors).toEqual([]);
  }, 150_000);

  it('local-steps mode in tabs: 2 replicas sync through their stage workers every H steps and end bitwise equal', async () => {
    const K = 4;
    const base = tabRun('tabs-local', K, 4);
    const run: RunConfig = {
      ...base,
      stages: evenStages(2, 1),
      compress: {
        act: { kind: 'fp32' },
        grad: { kind: 'fp32' },
        bottleneck: null,
        sync: { mode: 'local', H: 2, outerLr: 0.7, outerMomentum: 0.9, codec: { kind: 'int8', block: 64, rounding: 'nearest' } },
      },
    };
    const room = 'tabslocal';
    const { coordinator } = await startCoordinator(run, room, 2);
    const lanes: string[] = [];
    for (const id of ['tab-l0', 'tab-l1']) lanes.push(await tabId(await openTab(room, id)));
    const reports = await coordinator.finished();
    console.log(`local steps in tabs: ${summary(reports)}`);
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    // Syncs after step 1 and the last; each one left the two replicas' parameters bitwise equal (digests agree).
    expect(reports.map((r) => r.synced)).toEqual([false, true, false, true]);
    for (const r of reports) if (r.synced) expect(r.replicasAgree, `sync after step ${r.step}`).toBe(true);
    expect(reports[K - 1].members.map((m) => [...m].sort())).toEqual([[...lanes].sort()]);
    expect(reports[K - 1].loss).toBeLessThan(reports[0].loss);
    expect(errors).toEqual([]);
  }, 150_000);

  it('the coordinator page runs 2 contributor tabs (2 stages x 1)', async () => {
    const room = 'coordpage';
    const cfg = {
      stages: '2',
      steps: '2',
      M: '2',
      B: '2',
      n_layer: '2',
      n_embd: '32',
      n_head: '2',
      block: '16',
      lr: '0.01',
      seed: '7',
      minPeers: '2',
      autostart: '1',
      // The page's compress option (the CLI's syntax): a passthrough bottleneck + int4 on the stage boundary.
      compress: 'bottleneck=8p,pipe=int4',
    };
    const coord = await openTab(room, 'coordinator-tab', 'coordinator.html', cfg);
    await coord.waitForFunction(() => window.tabswarmCoordinator?.snapshot().phase === 'waiting', undefined, { timeout: 30_000 });
    const fingerprint = await coord.evaluate(() => window.tabswarmCoordinator!.fingerprint());
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    coordinators.set(room, fingerprint!);
    // tab-y runs the real join benchmark in its stage worker (empty `throughput`).
    const tabs = [await openTab(room, 'tab-x'), await openTab(room, 'tab-y', 'index.html', { throughput: '' })];
    await waitForState(tabs[0], ['ready', 'training', 'finished', 'assigned', 'linking'], 60_000);
    const tabX = (await snapshot(tabs[0])).peerId;
    await coord.waitForFunction(() => ['finished', 'error'].includes(window.tabswarmCoordinator!.snapshot().phase), undefined, {
      timeout: 90_000,
      polling: 200,
    });
    const snap: CoordinatorSnapshot = await coord.evaluate(() => window.tabswarmCoordinator!.snapshot());
    console.log(
      `coordinator page: ${summary(snap.reports)}; peers ${snap.peers.map((p) => `${p.id}@${p.stage}:${p.platform}:${p.state}:${p.microbatches}`).join(' ')}`,
    );
    expect(snap.error).toBe('');
    expect(snap.phase).toBe('finished');
    expect(snap.reports.map((r) => r.step)).toEqual([0, 1]);
    expect(snap.losses).toHaveLength(2);
    expect(snap.peers.map((p) => p.stage).sort()).toEqual([0, 1]);
    for (const p of snap.peers) {
      expect(p.platform).toBe('browser');
      if (p.id === tabX) expect(p.throughput).toBe(1000);
      else expect(p.throughput).toBeGreaterThan(0);
      expect(p.microbatches).toBe(4); // M = 2 per step, 2 steps
    }
    expect(await coord.locator(`tabswarm-coordinator tr[data-peer="${tabX}"]`).count()).toBe(1);
    expect(await coord.locator('tabswarm-coordinator tabswarm-uplot[data-k="loss-chart"] canvas').count()).toBe(1);
    const tabSnaps = [];
    for (const t of tabs) tabSnaps.push(await waitForState(t, ['finished'], 30_000));
    for (const s of tabSnaps) expect(s.step).toBe(2);
    // Each tab knows its verified credits from the coordinator page's ledger, and their shares add up; the page's
    // signed export verifies against its fingerprint.
    for (const s of tabSnaps) {
      expect(s.credit?.credits).toBeGreaterThan(0);
      expect(s.credit?.contributors).toBe(2);
      expect(s.credit?.total).toBe(tabSnaps[0].credit?.total);
    }
    expect(tabSnaps.reduce((a, s) => a + (s.credit?.share ?? 0), 0)).toBeCloseTo(1, 9);
    // In the collapsed "details and log" (textContent: innerText of a closed <details> is empty).
    expect(await tabs[0].locator('tabswarm-peer [data-k="credits"]').textContent()).toMatch(/FLOP \([\d.]+% of/);
    const exported = await coord.evaluate(() => window.tabswarmCoordinator!.ledger());
    expect(exported).not.toBeNull();
    const verdict = await verifyLedger(exported ?? '', fingerprint ?? '');
    expect(verdict.ok, verdict.ok ? '' : verdict.error).toBe(true);
    // Both pages show bytes per token and the ratio to fp32: the compressed boundary sends far fewer bytes.
    const ratio = async (p: Page, sel: string) =>
      Number(((await p.locator(`${sel} [data-k="ratio-pipeline"]`).first().textContent()) ?? '').replace('×', ''));
    expect(await coord.locator('tabswarm-coordinator [data-k="wire"]').first().innerText()).toMatch(/bytes\/token: activations [\d.]+/);
    // Tiny microbatches (32 tokens) pay framing per tensor: ~13x here, where fp32 reads just under 1x.
    expect(await ratio(coord, 'tabswarm-coordinator')).toBeGreaterThan(5);
    for (const t of tabs) expect(await ratio(t, 'tabswarm-peer')).toBeGreaterThan(5);
    expect(errors).toEqual([]);
  }, 120_000);

  it('without swarm parameters the contributor page stays the single-tab engine', async () => {
    const page = await browser.newPage();
    cleanup.push(() => page.close().catch(() => undefined));
    await page.goto(`${pages.url}/index.html`);
    await page.waitForFunction(() => !!customElements.get('tabswarm-engine'), undefined, { timeout: 30_000 });
    expect(await page.locator('tabswarm-engine').count()).toBe(1);
    expect(await page.locator('tabswarm-peer').count()).toBe(0);
    expect(await page.locator('tabswarm-engine button').innerText()).toBe('Start training');
  });
});
