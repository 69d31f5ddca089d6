// The coordinator's frozen-peer handling (docs/resilience.md, "Stragglers and frozen peers") against a fake control
// plane and scripted peers (no GPU, no network): a member that stops answering is pinged past the microbatch
// deadline, frozen, the step re-runs without it; heard from again, it rejoins its stage with a state copy.
import { describe, expect, it } from 'vitest';
import type { ControlMessage } from '../protocol/messages';
import { Coordinator } from './coordinator';
import { announce, FakePlane, unitRun } from '../../tests/support/fake-plane';

/** Members that answer like correct peers, pings included; a `stopped` one says nothing at all (SIGSTOP). */
function scriptPeers(plane: FakePlane, stopped: Set<string>) {
  const stageOf = new Map<string, number>();
  plane.responder = (msg, to) => {
    const say = (p: string, m: ControlMessage) => {
      if (!stopped.has(p)) plane.from(p, m);
    };
    switch (msg.type) {
      case 'swarm-assign':
        if (to) stageOf.set(to, msg.stage);
        return;
      case 'ping':
        if (to) say(to, { type: 'pong', nonce: msg.nonce });
        return;
      case 'swarm-members':
        for (const p of msg.stages.flat()) say(p, { type: 'swarm-ready', epoch: msg.epoch });
        return;
      case 'step-begin': {
        const { step, attempt } = msg;
        const last = msg.members[msg.members.length - 1];
        msg.owners.forEach((o, mb) => {
          if (stopped.has(o)) return; // its microbatches never come back
          say(last[mb % last.length], { type: 'mb-loss', step, attempt, mb, loss: 2 });
          say(o, { type: 'mb-done', step, attempt, mb });
        });
        return;
      }
      case 'step-reduce':
        msg.members.forEach((m, s) =>
          m.forEach((p) =>
            say(p, { type: 'step-trace', step: msg.step, attempt: msg.attempt, stage: s, part: 0, parts: 1, backward: [], sent: [], recv: [] }),
          ),
        );
        msg.members.forEach((m, s) => say(m[0], { type: 'grad-sumsq', step: msg.step, attempt: msg.attempt, stage: s, value: 1 }));
        return;
      case 'step-apply':
        for (const [p, s] of stageOf) say(p, { type: 'step-done', step: msg.step, attempt: msg.attempt, stage: s, digest: `d${s}-${msg.step}` });
        return;
      default:
        return;
    }
  };
}

const run = unitRun({ runId: 'liveness', steps: 5 });

describe('Coordinator: frozen peers', () => {
  it('a silent first-stage replica is frozen past the deadline, the step re-runs on its twin; heard again, it rejoins', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run, minPeers: 4, stepTimeoutMs: 60_000, mbDeadlineMinMs: 50, pingTimeoutMs: 50 });
    const stopped = new Set<string>();
    scriptPeers(plane, stopped);
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
    expect(begins.find((b) => b.step === 1 && b.attempt === 1)?.owners).toEqual(['a', 'a', 'a', 'a']);
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
    scriptPeers(plane, stopped);
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
