// More waiting peers than one membership's messages carry (membership-budget.ts): the coordinator admits what fits,
// keeps the rest on standby without re-running an epoch every step, and admits some when members leave.
import { describe, expect, it } from 'vitest';
import { Coordinator } from './coordinator';
import { wireProblem } from './membership-budget';
import { announce, FakePlane, scriptPeers, unitRun } from '../../tests/support/fake-plane';
import { evenStages } from './run-builder';

// 64-character ids (the longest the protocol allows) in four stages: 900 of them are more than one swarm-members
// carries signed (60 KiB), fewer than the schema's 256 a stage.
const N = 900;
const id = (i: number) => `p${String(i).padStart(63, '0')}`;

describe('Coordinator: peers on standby', () => {
  it('admits within the wire, keeps the rest waiting, admits some when members leave', async () => {
    const plane = new FakePlane();
    const logs: string[] = [];
    const c = new Coordinator(plane, {
      run: unitRun({ runId: 'standby', steps: 4, stages: evenStages(4, 4) }),
      minPeers: N,
      log: (s) => logs.push(s),
    });
    scriptPeers(plane);
    let left: string[] = [];
    c.events.on('step', (r) => {
      if (r.step !== 0) return;
      // A join costs more than a member (its entry names its source): a few must leave to make room for one.
      left = [...r.members[0].slice(0, 2), ...r.members[1].slice(0, 2)];
      for (const p of left) plane.leave(p);
    });
    for (let i = 0; i < N; i++) announce(plane, id(i));
    const reports = await c.finished();
    c.close();
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    for (const { msg } of plane.sent) expect(wireProblem(msg), msg.type).toBeNull();
    const epochs = plane.ofType('swarm-members');
    // The first epoch, then only epochs that admit someone (after the leaves; a joiner that became a member takes
    // less room than its join did): never one a step for the peers left waiting.
    expect(epochs.length).toBeLessThan(reports.length);
    for (const e of epochs.slice(1)) expect(e.joins.length).toBeGreaterThan(0);
    const first = epochs[0].stages.flat();
    expect(first.length).toBeGreaterThan(500);
    expect(first.length).toBeLessThan(N);
    const joins = epochs[1].joins.map((j) => j.peer);
    expect(joins.length).toBeGreaterThan(0);
    expect(joins.length).toBeLessThan(4);
    // The longest-waiting first.
    expect(joins).toEqual(Array.from({ length: joins.length }, (_, k) => id(first.length + k)));
    for (const p of left) expect(epochs[1].stages.flat()).not.toContain(p);
    expect(logs.filter((l) => /on standby/.test(l))).toHaveLength(epochs.length); // once an epoch, not a step
    expect(logs.find((l) => /on standby/.test(l))).toMatch(new RegExp(`] ${N - first.length} peer\\(s\\) on standby: .* signed control`));
  });
});
