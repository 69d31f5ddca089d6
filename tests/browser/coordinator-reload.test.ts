// Issue 10, browser: the coordinator PAGE reloaded mid-run resumes its run (docs/resilience.md "Coordinator restart").
// A real signaling server, the coordinator on the real coordinator page (coordinator.html in headless Chromium: its
// key in IndexedDB via src/ui/key-store.ts, its saved run in IndexedDB via src/ui/run-store.ts) and 2 Node peers in
// this process (real node-datachannel WebRTC, Dawn/lavapipe), 2 stages x 1. Once the page shows step k completed it
// is reloaded (page.reload()): the peers wait for their coordinator (waiting-coordinator), the reloaded page finds
// its room's unfinished run with the same key and resumes it by itself, the peers re-announce with their member
// claims and are re-adopted, and the run finishes: every step reported once, the losses the single-peer engine's.
// SWARM_LOG=1 prints the page's and the peers' logs.
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSignalingServer } from '../../signaling-server/server';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import { nodeRtcFactory, nodeWebSocket } from '../../src/net/rtc-node';
import { SwarmPeer, type SwarmPeerState } from '../../src/swarm/peer';
import type { CoordinatorSnapshot } from '../../src/ui/coordinator-page';
import { testIdentity } from '../support/identity';
import { data, LOG, reference } from '../swarm/harness';
import { browserSuite } from './suite';
import { summary, tinyCoordinatorQuery } from './swarm-tabs';

const TOL = 2e-3; // the browser suites' loss tolerance (here both sides run lavapipe: the figure is printed)
const K = 10; // steps
const RELOAD_AT = 3; // reload once the page shows this many steps completed

const snap = (p: Page): Promise<CoordinatorSnapshot> => p.evaluate(() => window.tabswarmCoordinator!.snapshot());

/** In the page: whether the room's saved run (idb-keyval's default database) holds at least k steps. */
function savedSteps({ room, k }: { room: string; k: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const open = indexedDB.open('keyval-store');
    open.onerror = () => resolve(false);
    // Not created yet: leave it to idb-keyval (a database made here would lack its object store).
    open.onupgradeneeded = () => open.transaction?.abort();
    open.onsuccess = () => {
      const db = open.result;
      try {
        const get = db.transaction('keyval', 'readonly').objectStore('keyval').get(`tabswarm-run:${room}`);
        get.onsuccess = () => {
          db.close();
          const text: unknown = get.result;
          resolve(typeof text === 'string' && (JSON.parse(text) as { step: number }).step >= k);
        };
        get.onerror = () => (db.close(), resolve(false));
      } catch {
        db.close();
        resolve(false);
      }
    };
  });
}

/**
 * When the reload comes, step k being completed and saved: `saved`, once the saved run in IndexedDB holds k steps
 * (the next step in flight, most likely before its update); `apply`, the moment a peer receives the update
 * (step-apply) of a step after k — its peers apply a step whose report the page may not live to save.
 */
type ReloadAt = 'saved' | 'apply';

describe('the coordinator page reloaded mid-run', () => {
  const suite = browserSuite();

  it('resumes the same run with the same key, re-adopts its peers and finishes every step once', () => reloadRun('coordreload', 'saved'), 300_000);

  it("loses no step when reloaded as a step's update goes out (its report from the write-ahead)", () => reloadRun('coordreload2', 'apply'), 300_000);

  async function reloadRun(room: string, at: ReloadAt): Promise<void> {
    const runId = `page-reload-${at}`;
    const signaling = await startSignalingServer({ host: '127.0.0.1', port: 0 });
    const peers: SwarmPeer[] = [];
    const page = await suite.browser.newPage();
    try {
      const errors: string[] = [];
      const pageLog: string[] = [];
      page.on('pageerror', (e) => errors.push(`page: ${String(e)}`));
      page.on('console', (m) => {
        pageLog.push(m.text());
        LOG?.(`[coordinator page] ${m.text()}`);
        if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`page console: ${m.text()}`);
      });
      const q = tinyCoordinatorQuery({
        signal: signaling.url,
        room,
        'run-id': runId,
        steps: String(K),
        'min-peers': '2',
        autostart: '1',
      });
      await page.goto(`${suite.server.url}/coordinator.html?${q}`);
      await page.waitForFunction(() => window.tabswarmCoordinator?.snapshot().phase === 'waiting', undefined, { timeout: 60_000 });
      const fingerprint = await page.evaluate(() => window.tabswarmCoordinator!.fingerprint());
      expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);

      // Two Node peers of the page's room and key; each peer's states, state transfers and log kept.
      const states = new Map<string, SwarmPeerState[]>();
      const received: { peer: string; step: number }[] = [];
      const peerLog: string[] = [];
      for (const label of ['p0', 'p1']) {
        const p = await SwarmPeer.join({
          url: signaling.url,
          room,
          coordinator: fingerprint ?? '',
          identity: await testIdentity(`${room}/${label}`),
          WebSocket: nodeWebSocket,
          rtcFactory: nodeRtcFactory(),
          runtime: () => nodeRuntime({ quiet: true }),
          tokens: () => data().train,
          platform: 'node',
          throughput: 1000,
          reduceTimeoutMs: 20_000,
          log: (s) => {
            peerLog.push(`${label}: ${s}`);
            LOG?.(`[${label}] ${s}`);
          },
        });
        peers.push(p);
        states.set(p.peerId, []);
        p.events.on('state', (s) => states.get(p.peerId)?.push(s));
        p.events.on('state-received', ({ step }) => received.push({ peer: p.peerId, step }));
      }

      // Step k completed, as the page shows it; then the reload.
      await page.waitForFunction((k) => window.tabswarmCoordinator!.snapshot().reports.length >= k, RELOAD_AT, { timeout: 120_000, polling: 20 });
      // ... and its saved run in IndexedDB (src/ui/run-store.ts; idb-keyval's default store).
      await page.waitForFunction(savedSteps, { room, k: RELOAD_AT }, { timeout: 60_000, polling: 20 });
      const before = await snap(page);
      const lastBefore = before.reports[before.reports.length - 1].step;
      expect(before.runId).toBe(runId);
      expect(lastBefore).toBeLessThan(K - 2); // the run is not over yet
      let t0 = performance.now();
      if (at === 'saved') await page.reload();
      else {
        // The reload starts in the same tick as a peer receives a later step's update.
        await new Promise<void>((resolve, reject) => {
          const off = peers[0].signaling.on('control', ({ msg }) => {
            if (msg.type !== 'step-apply' || msg.step <= lastBefore) return;
            off();
            t0 = performance.now();
            page.reload().then(() => resolve(), reject);
          });
        });
      }
      // The reloaded page resumes by itself: same run, same key, the saved loss curve restored.
      await page.waitForFunction(() => !!window.tabswarmCoordinator?.snapshot().runId, undefined, { timeout: 60_000, polling: 20 });
      const resumed = await snap(page);
      const tResumed = performance.now() - t0;
      expect(resumed.runId).toBe(runId);
      expect(await page.evaluate(() => window.tabswarmCoordinator!.fingerprint())).toBe(fingerprint);
      const saved = resumed.reports.map((r) => r.step);
      expect(saved).toEqual(Array.from({ length: saved.length }, (_, i) => i));
      // The save of the step the page last showed may not have reached IndexedDB before the unload: at most that one.
      expect(saved.length).toBeGreaterThanOrEqual(RELOAD_AT - 1);
      for (const r of resumed.reports) if (r.step <= lastBefore) expect(r.loss).toBe(before.reports[r.step].loss);
      const shown = Math.min(saved.length, before.losses.length);
      expect(resumed.losses.slice(0, shown)).toEqual(before.losses.slice(0, shown));

      // The next completed step after the reload.
      await page.waitForFunction((s) => window.tabswarmCoordinator!.snapshot().reports.some((r) => r.step > s), lastBefore, {
        timeout: 120_000,
        polling: 20,
      });
      const tNext = performance.now() - t0;
      await page.waitForFunction(() => ['finished', 'error'].includes(window.tabswarmCoordinator!.snapshot().phase), undefined, {
        timeout: 180_000,
        polling: 100,
      });
      const final = await snap(page);
      const adopted = pageLog.find((l) => /re-adopted \d+ member\(s\) at step \d+/.test(l)) ?? '';
      const recovered = pageLog.find((l) => /recovered from the write-ahead/.test(l)) ?? 'no report recovered';
      console.log(
        `coordinator page reload (${at}) after step ${lastBefore} (saved ${saved.length} steps): resumed view ${tResumed.toFixed(0)} ms, ` +
          `next completed step ${tNext.toFixed(0)} ms after the reload; "${adopted}"; "${recovered}"; transfers ${JSON.stringify(received)}; ` +
          summary(final.reports),
      );
      expect(final.error).toBe('');
      expect(final.phase).toBe('finished');
      // Every step once, in order (nothing lost, nothing counted twice), the loss curve whole.
      expect(final.reports.map((r) => r.step)).toEqual(Array.from({ length: K }, (_, i) => i));
      expect(final.losses).toHaveLength(K);
      for (let i = 0; i < saved.length; i++) expect(final.reports[i].loss).toBe(resumed.reports[i].loss);

      // The peers waited for their coordinator and re-announced; re-adopted at the step they were at (a state
      // transfer only for a claimant the plan put behind: the page's log says how many joined from the others).
      for (const [id, ss] of states) expect(ss, id).toContain('waiting-coordinator');
      expect(peerLog.filter((l) => /re-announcing/.test(l)).length).toBeGreaterThanOrEqual(2);
      const m = /re-adopted (\d+) member\(s\) at step (\d+), (\d+) joining/.exec(adopted);
      expect(m, pageLog.join('\n')).not.toBeNull();
      const [members, atStep, joiners] = [Number(m?.[1]), Number(m?.[2]), Number(m?.[3])];
      expect(members + joiners).toBe(2);
      expect(received).toHaveLength(joiners);
      expect(atStep).toBeGreaterThanOrEqual(saved.length);
      expect(atStep).toBeLessThanOrEqual(K);
      for (const p of peers) expect(p.progress.step).toBe(K);

      // The losses are the single-peer engine's on the same batches.
      const run = final.run;
      expect(run).not.toBeNull();
      if (!run) return;
      const ref = await reference(run);
      try {
        const worst = Math.max(...final.reports.map((r, i) => Math.abs(r.loss - ref.losses[i])));
        console.log(`coordinator page reload: worst |loss - reference| ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(TOL);
      } finally {
        ref.rt.destroy();
      }
      expect(errors).toEqual([]);
    } finally {
      for (const p of peers) p.close();
      await page.close().catch(() => undefined);
      await signaling.close();
    }
  }
});
