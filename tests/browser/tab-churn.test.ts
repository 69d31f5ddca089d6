// Issue 10, browser: a third of the tabs closed mid-run (docs/resilience.md). 6 contributor tabs in headless Chromium
// (SwiftShader WebGPU in each tab's stage worker), 2 stages x 3 replicas, the Coordinator in Node. When the first
// stage-0 replica reports its first microbatch of step K_CLOSE, one replica of each stage is closed at once (2 of 6):
// the step is re-run by the survivors (a new attempt from zeroed gradients), every step finishes exactly once, the
// loss curve has no gap, and losses and final weights are the single-peer engine's (per-step mode) within the
// SwiftShader-vs-lavapipe tolerance of tests/browser/swarm-e2e.test.ts.
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { reference } from '../swarm/harness';
import { summary, tabId, tabRun, tabSwarmSuite, waitForState } from './swarm-tabs';

/** swarm-e2e's tolerance: SwiftShader in the tabs vs lavapipe in Node. */
const TOL = 2e-3;

describe('tabs closed mid-run', () => {
  const swarm = tabSwarmSuite();

  it('6 tabs, 2 stages x 3: 2 tabs (one per stage) closed mid-step, every step finishes once, parity with the single-peer engine', async () => {
    const K = 4;
    const K_CLOSE = 1;
    const run = tabRun('tabs-third', K, 6);
    const room = 'tabsthird';
    const t0 = performance.now();
    const { sig, coordinator } = await swarm.startCoordinator(run, room, 6);
    const tabs = new Map<string, Page>();
    for (let i = 0; i < 6; i++) {
      const page = await swarm.openTab(room, `tab-${i}`);
      tabs.set(await tabId(page), page);
    }
    const restarts: { step: number; attempt: number; reason: string }[] = [];
    coordinator.events.on('restart', (r) => restarts.push(r));

    // One replica of each stage, closed together when the first stage-0 replica reports a microbatch of K_CLOSE:
    // their work on that attempt dies with them.
    let victims: string[] = [];
    let closing: Promise<void[]> | undefined;
    sig.on('control', ({ from, msg }) => {
      if (closing || msg.type !== 'mb-done' || msg.step !== K_CLOSE) return;
      const members = coordinator.members();
      if (members[0][0] !== from) return;
      victims = [members[0][2], members[1][2]];
      closing = Promise.all(victims.map((v) => tabs.get(v)?.close() ?? Promise.resolve()));
    });

    const reports = await coordinator.finished();
    await closing;
    const ms = performance.now() - t0;
    console.log(
      `6 tabs, 2 closed (${victims.join(', ')}) at step ${K_CLOSE}: ${summary(reports)}; restarts ${JSON.stringify(restarts)}; total ${ms.toFixed(0)} ms`,
    );
    expect(victims).toHaveLength(2);
    // Every step once, in order; the closed tabs' step was re-run (a counted attempt), not lost or doubled.
    expect(reports.map((r) => r.step)).toEqual(Array.from({ length: K }, (_, i) => i));
    expect(reports[0].members.map((m) => m.length)).toEqual([3, 3]);
    expect(reports[K_CLOSE].attempts).toBeGreaterThanOrEqual(2);
    for (const v of victims) expect(restarts.some((r) => r.step === K_CLOSE && r.reason.includes(v))).toBe(true);
    for (const r of reports.slice(K_CLOSE)) {
      expect(r.members.map((m) => m.length)).toEqual([2, 2]);
      for (const v of victims) expect(r.members.flat()).not.toContain(v);
    }
    for (const r of reports) {
      expect(r.replicasAgree).toBe(true);
      expect(Number.isFinite(r.loss)).toBe(true);
    }

    // Parity: each step's loss is the single-peer engine's on the same batches (counted once: a doubled or lost
    // microbatch would move it), and so are the survivors' final weights.
    const ref = await reference(run);
    try {
      console.log(`tabs vs single-peer engine: ${reports.map((r, i) => `${r.loss.toFixed(5)}/${ref.losses[i].toFixed(5)}`).join(' ')}`);
      for (let i = 0; i < K; i++) expect(Math.abs(reports[i].loss - ref.losses[i])).toBeLessThan(TOL);
      const live = [...tabs.entries()].filter(([id]) => !victims.includes(id));
      let worst = { name: '', score: 0 };
      for (const [id, page] of live) {
        const got = await page.evaluate(() => window.tabswarm!.params());
        expect(got).not.toBeNull();
        for (const [name, v] of Object.entries(got ?? {})) {
          const e = ref.params.get(name);
          if (!e) throw new Error(`the reference has no ${name}`);
          expect(v).toHaveLength(e.length);
          let d = 0;
          let mag = 0;
          for (let i = 0; i < e.length; i++) {
            d = Math.max(d, Math.abs(v[i] - e[i]));
            mag = Math.max(mag, Math.abs(e[i]));
          }
          const score = d / Math.max(1, mag);
          if (!(score <= worst.score)) worst = { name: `${id}:${name}`, score };
        }
      }
      console.log(`final weights vs single-peer engine: worst ${worst.name} ${worst.score.toExponential(2)}`);
      expect(worst.score).toBeLessThan(TOL);

      // The loss curve each surviving tab shows is continuous: one finite point per step, the coordinator's.
      const snaps = await Promise.all(live.map(([, p]) => waitForState(p, ['finished'], 30_000)));
      for (const s of snaps) {
        expect(s.error).toBe('');
        expect(s.step).toBe(K);
        expect(s.losses).toHaveLength(K);
        for (let i = 0; i < K; i++) expect(s.losses[i]).toBeCloseTo(reports[i].loss, 6);
      }
    } finally {
      ref.rt.destroy();
    }
    expect(swarm.errors).toEqual([]);
  }, 300_000);
});
