// The coordinator page's create / Start / Stop (src/ui/coordinator-page.ts) on the coordinator itself, against a fake
// control plane and scripted peers: a held run assigns the peers that announce themselves but begins no step until
// begin(); stop() ends the run after the step in progress, as a finished run, and tells the peers why.
import { describe, expect, it } from 'vitest';
import { Coordinator } from './coordinator';
import { announce, FakePlane, scriptPeers, unitRun } from '../../tests/support/fake-plane';

const run = unitRun({ runId: 'hold', steps: 6 });
const tick = () => new Promise((r) => setTimeout(r, 20));

describe('Coordinator: hold, begin, stop', () => {
  it('held: peers are assigned before begin(), no membership or step before it; then the run trains', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: { ...run, steps: 2 }, minPeers: 2, hold: true });
    scriptPeers(plane, { loss: () => 2 });
    for (const p of ['a', 'b']) announce(plane, p);
    await tick();
    expect(
      plane
        .sentOf('swarm-assign')
        .map((s) => s.to)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(plane.sentOf('swarm-members')).toEqual([]);
    expect(plane.sentOf('step-begin')).toEqual([]);
    c.begin();
    const reports = await c.finished();
    c.close();
    expect(reports.map((r) => r.step)).toEqual([0, 1]);
  });

  it('stop() mid-run: the step in progress completes, the run finishes early, the shutdown says why', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run, minPeers: 2 });
    scriptPeers(plane, { loss: () => 2 });
    c.events.on('step', (r) => r.step === 1 && c.stop('stopped on the page'));
    for (const p of ['a', 'b']) announce(plane, p);
    const reports = await c.finished();
    c.close();
    expect(reports.map((r) => r.step)).toEqual([0, 1]);
    const shutdown = plane.sentOf('shutdown').map((s) => s.msg.reason);
    expect(shutdown).toEqual(['run hold stopped at step 2: stopped on the page']);
  });

  it('stop() while held or waiting for peers: no step at all, finished with no reports', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run, minPeers: 3, hold: true });
    scriptPeers(plane, { loss: () => 2 });
    announce(plane, 'a');
    await tick();
    c.stop('nobody came');
    expect(await c.finished()).toEqual([]);
    c.close();
    expect(plane.sentOf('step-begin')).toEqual([]);
  });
});
