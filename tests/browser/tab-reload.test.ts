// Issue 10, browser: a tab reloaded mid-run resumes from IndexedDB and trains again within one step
// (docs/resilience.md "Tab reload"). 2 contributor tabs, 2 stages x 1, checkpoints after every step. The last stage's
// only replica is reloaded once it reported a saved checkpoint: its stage has no live replica, so the run pauses (the
// other tab shows why) until the tab is back. The reloaded tab keeps its identity (its key slot), announces its
// IndexedDB checkpoints, gets its stage back, restores it from its own checkpoint and is a member of the very next
// step the run completes; every step is reported once and the losses are the single-peer engine's. Also: a tab whose
// coordinator vanishes mid-run shows waiting-coordinator with the seconds left, counting down.
import { describe, expect, it } from 'vitest';
import type { StepReport } from '../../src/coordinator/coordinator';
import { evenStages } from '../../src/coordinator/run-builder';
import { reference } from '../swarm/harness';
import { snapshot, summary, tabId, tabRun, tabSwarmSuite, waitForState } from './swarm-tabs';

const TOL = 2e-3;

describe('a tab reloaded mid-run', () => {
  const swarm = tabSwarmSuite();

  it("resumes its stage from IndexedDB and trains in the run's next step", async () => {
    const K = 5;
    const SAVED = 2; // reload once the tab reported its checkpoint after 2 steps
    const run = tabRun('tabs-reload', K, 2, { checkpoint: { every: 1, keep: 2 } });
    const room = 'tabsreload';
    const { sig, coordinator } = await swarm.startCoordinator(run, room, 2);
    const pages = [await swarm.openTab(room, 'tab-r0'), await swarm.openTab(room, 'tab-r1')];
    const ids = await Promise.all(pages.map(tabId));
    const seen: { report: StepReport; afterReturn: boolean }[] = [];
    let back = false;
    let stepAtReturn = -1;
    coordinator.events.on('step', (report) => seen.push({ report, afterReturn: back }));

    let reloading: Promise<void> | undefined;
    let victim = '';
    sig.on('control', ({ from, msg }) => {
      if (reloading || msg.type !== 'checkpoint-saved' || msg.step < SAVED || msg.stage !== 1 || !coordinator.members()[1].includes(from)) return;
      victim = from;
      const page = pages[ids.indexOf(from)];
      // Back = the coordinator assigned it again (it rejoined and announced its checkpoints).
      coordinator.events.on('assigned', ({ peerId }) => {
        if (peerId !== victim || back) return;
        back = true;
        stepAtReturn = coordinator.step;
      });
      reloading = page.reload().then(() => undefined);
    });

    const reports = await coordinator.finished();
    await reloading;
    const page = pages[ids.indexOf(victim)];
    const other = pages[1 - ids.indexOf(victim)];
    console.log(`reload of ${victim}: ${summary(reports)}`);
    expect(victim).not.toBe('');
    // The same identity after the reload (its key slot).
    expect(await tabId(page)).toBe(victim);
    // Every step once, in order, with the losses of the single-peer engine (nothing lost, nothing counted twice).
    expect(reports.map((r) => r.step)).toEqual(Array.from({ length: K }, (_, i) => i));
    const ref = await reference(run);
    try {
      for (let i = 0; i < K; i++) expect(Math.abs(reports[i].loss - ref.losses[i])).toBeLessThan(TOL);
    } finally {
      ref.rt.destroy();
    }

    const snap = await waitForState(page, ['finished'], 60_000);
    console.log(`reloaded tab notes: ${JSON.stringify(snap.notes)}; checkpoints ${JSON.stringify(snap.checkpoints)}`);
    expect(snap.error).toBe('');
    expect(snap.stage).toBe(1);
    // Restored from its own IndexedDB checkpoint at step s, the run's step when it came back ...
    const restored = snap.notes
      .map((n) => /restored its stage from this tab's checkpoint \(IndexedDB\) at step (\d+)/.exec(n))
      .find((m) => m !== null);
    expect(restored, `notes: ${JSON.stringify(snap.notes)}`).toBeDefined();
    const s = Number(restored?.[1]);
    expect(s).toBeGreaterThanOrEqual(SAVED);
    // ... and the first step the run completed after it was back is step s (the run's (s+1)-th), with this tab in it.
    const firstAfter = seen.find((x) => x.afterReturn)?.report;
    expect(firstAfter?.step).toBe(s);
    expect(stepAtReturn).toBeGreaterThanOrEqual(SAVED);
    expect(s).toBeLessThanOrEqual(stepAtReturn); // a rollback may take the run back to s (the newest copy every stage has)
    expect(firstAfter?.members[1]).toEqual([victim]);
    // The page says so, and lists the checkpoints it holds (every step saved, the newest 2 of its stage kept).
    expect(await page.locator('tabswarm-peer [data-k="note"]').first().innerText()).toContain(`(IndexedDB) at step ${s}`);
    // (The last save may land after the run ended: wait for it.)
    await page.waitForFunction((k) => window.tabswarm!.snapshot().checkpoints.some((c) => c.stage === 1 && c.step === k), K, {
      timeout: 30_000,
      polling: 100,
    });
    expect((await snapshot(page)).checkpoints.filter((c) => c.stage === 1).map((c) => c.step)).toEqual([K, K - 1]);
    expect(await page.locator('tabswarm-peer [data-k="checkpoints"]').innerText()).toMatch(new RegExp(`newest: stage 1 at step ${K}`));
    // The other tab showed the pause and why.
    const otherSnap = await snapshot(other);
    expect(otherSnap.log.some((l) => /run paused at step \d+: .*stage 1/.test(l))).toBe(true);
    expect(otherSnap.paused).toBeNull();
    expect(swarm.errors).toEqual([]);
  }, 300_000);

  it('shows waiting-coordinator with the seconds left when the coordinator vanishes mid-run', async () => {
    const run = { ...tabRun('tabs-orphan', 1000, 2, { checkpoint: { every: 1, keep: 2 } }), stages: evenStages(2, 1) };
    const room = 'tabsorphan';
    const { sig, coordinator } = await swarm.startCoordinator(run, room, 1);
    const stepped = new Promise<void>((resolve) => coordinator.events.on('step', (r) => r.step >= 1 && resolve()));
    const page = await swarm.openTab(room, 'tab-o0');
    await stepped;
    // The coordinator process dies: no shutdown, its signaling connection just goes.
    coordinator.close();
    sig.close();
    const snap = await waitForState(page, ['waiting-coordinator'], 60_000);
    expect(snap.waitingLeftMs).not.toBeNull();
    const left = snap.waitingLeftMs ?? 0;
    expect(left).toBeGreaterThan(500_000); // the default bound, 600 s
    expect(left).toBeLessThanOrEqual(600_000);
    expect(await page.locator('tabswarm-peer [data-k="state"]').innerText()).toBe('waiting-coordinator');
    expect(await page.locator('tabswarm-peer [data-k="waiting"]').innerText()).toMatch(/coordinator left; waiting for it to return \(\d+ s left/);
    // It counts down.
    await page.waitForFunction((l) => (window.tabswarm!.snapshot().waitingLeftMs ?? Infinity) < l, left, { timeout: 30_000, polling: 200 });
    expect(swarm.errors).toEqual([]);
  }, 120_000);
});
