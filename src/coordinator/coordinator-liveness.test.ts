// The coordinator's frozen-peer handling (docs/resilience.md, "Stragglers and frozen peers") against a fake control
// plane and scripted peers (no GPU, no network): a member that stops answering is pinged past the microbatch
// deadline, frozen, the step re-runs without it; heard from again, it rejoins its stage with a state copy.
import { describe, expect, it } from 'vitest';
import { stepOwners } from '../protocol/messages';
import { Coordinator } from './coordinator';
import { announce, FakePlane, scriptPeers, unitRun } from '../../tests/support/fake-plane';

const run = unitRun({ runId: 'liveness', steps: 5 });

describe('Coordinator: frozen peers', () => {
  it('a silent first-stage replica is frozen past the deadline, the step re-runs on its twin; heard again, it rejoins', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run, minPeers: 4, stepTimeoutMs: 60_000, mbDeadlineMinMs: 50, pingTimeoutMs: 50 });
    const stopped = new Set<string>();
    scriptPeers(plane, { silent: stopped, loss: () => 2 });
    const frozen: string[] = [];
    c.events.on('frozen', (e) => frozen.push(e.peerId));
    c.events.on('step', (r) => {
      if (r.step === 0) stopped.add('c'); // stage 0's second replica stops after step 0
      if (r.step === 2) {
        stopped.delete('c');
        plane.from('c', { type: 'pong', nonce: 1 }); // its late answer to the ping it slept through
      }
    });
    for (const p of ['a', 'b', 'c', 'd']) announce(plane, p);
    const reports = await c.finished();
    c.close();
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
    expect(frozen).toEqual(['c']);
    // Step 1: every member pinged once its microbatches were late; c silent, re-run with a owning all microbatches.
    const pinged = plane.sentOf('ping').map((s) => s.to);
    expect(new Set(pinged)).toEqual(new Set(['a', 'b', 'c', 'd']));
    expect(reports[1].attempts).toBe(2);
    expect(reports[1].members).toEqual([['a'], ['b', 'd']]);
    const begins = plane.sentOf('step-begin').map((s) => s.msg);
    const rerun = begins.find((b) => b.step === 1 && b.attempt === 1);
    expect(rerun && stepOwners(rerun)).toEqual(['a', 'a', 'a', 'a']);
    // Not a strike: freezing is no offence.
    expect(c.evicted).toEqual([]);
    // Back after step 2: a joiner of its stage copying from a, in the membership before step 3, training steps 3-4.
    const joins = plane.sentOf('swarm-members').map((s) => s.msg);
    expect(joins[joins.length - 1].joins).toEqual([{ peer: 'c', stage: 0, source: 'a' }]);
    expect(joins[joins.length - 1].step).toBe(3);
    expect(reports[3].members).toEqual([
      ['a', 'c'],
      ['b', 'd'],
    ]);
    expect(reports[4].attempts).toBe(1);
  });

  it("a stage's last live replica is not dropped though silent: the step waits for it", async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: { ...run, steps: 3 }, minPeers: 2, stepTimeoutMs: 60_000, mbDeadlineMinMs: 50, pingTimeoutMs: 50 });
    const stopped = new Set<string>();
    scriptPeers(plane, { silent: stopped, loss: () => 2 });
    const frozen: string[] = [];
    c.events.on('frozen', (e) => frozen.push(e.peerId));
    let resumed = false;
    c.events.on('step', (r) => {
      if (r.step !== 0) return;
      stopped.add('a'); // stage 0's only replica
      setTimeout(() => {
        resumed = true;
        stopped.delete('a');
        // Awake again: it does its part of step 1 (what it would have done on receiving the step-begin).
        const begin = plane.sentOf('step-begin').at(-1)?.msg;
        if (begin) plane.responder(begin);
      }, 400);
    });
    for (const p of ['a', 'b']) announce(plane, p);
    const reports = await c.finished();
    c.close();
    expect(resumed).toBe(true);
    expect(frozen).toEqual([]);
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
    expect(reports[1].attempts).toBe(1);
  });
});
