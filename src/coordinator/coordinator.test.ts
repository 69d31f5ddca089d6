// The coordinator's protocol logic against a fake control plane and scripted peers (no GPU, no network).
import { describe, expect, it } from 'vitest';
import { learningRate } from '../model/schedule';
import { Coordinator } from './coordinator';
import { announce, FakePlane, scriptPeers, unitRun as run } from '../../tests/support/fake-plane';
import { evenStages } from './run-builder';

describe('Coordinator', () => {
  it('assigns, links up, runs every step and computes the global clip scale and lr', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: run(), minPeers: 4 });
    scriptPeers(plane, { sumsq: [3, 1] }); // norm 2 -> scale 1 / (2 + 1e-6)
    for (const p of ['a', 'b', 'c', 'd']) announce(plane, p, 100);
    const reports = await c.finished();
    expect(plane.ofType('swarm-assign').map((m) => m.stage)).toEqual([0, 1, 0, 1]);
    expect(plane.ofType('swarm-members')[0].stages).toEqual([
      ['a', 'c'],
      ['b', 'd'],
    ]);
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
    const apply = plane.ofType('step-apply');
    expect(apply.map((a) => a.lr)).toEqual([0, 1, 2].map((s) => learningRate(s, run().schedule)));
    expect(apply[0].scale).toBeCloseTo(1 / (2 + 1e-6), 12);
    expect(reports[0].gradNorm).toBeCloseTo(2, 12);
    expect(reports[0].loss).toBeCloseTo((2 + 3 + 4 + 5) / 4, 12);
    expect(plane.ofType('step-begin')[0].owners).toEqual([0, 1, 0, 1]); // indices into members[0] = [a, c]
    expect(plane.ofType('step-begin')[0].members[0]).toEqual(['a', 'c']);
    expect(reports.every((r) => r.replicasAgree && r.attempts === 1)).toBe(true);
    expect(plane.sent[plane.sent.length - 1].msg.type).toBe('shutdown');
    c.close();
  });

  it('no clipping below the threshold or with gradClip 0', async () => {
    for (const [gradClip, sumsq, want] of [
      [1, [0.09, 0.16], 1],
      [0, [100, 1], 1],
    ] as const) {
      const plane = new FakePlane();
      const r = run({ steps: 1 });
      r.optimizer.gradClip = gradClip;
      const c = new Coordinator(plane, { run: r, minPeers: 2 });
      scriptPeers(plane, { sumsq: [...sumsq] });
      announce(plane, 'a', 1);
      announce(plane, 'b', 1);
      await c.finished();
      expect(plane.ofType('step-apply')[0].scale).toBe(want);
      c.close();
    }
  });

  it('re-runs a step whose member vanished before the update, re-owning its microbatches', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: run(), minPeers: 4 });
    const dead = new Set<string>();
    let killed = false;
    scriptPeers(plane, {
      sumsq: [1, 1],
      silent: dead,
      intercept: (msg) => {
        if (msg.type === 'step-reduce' && msg.step === 1 && !killed) {
          killed = true; // c dies after the microbatches, during the all-reduce
          dead.add('c');
          plane.leave('c');
          return true;
        }
        return false;
      },
    });
    for (const p of ['a', 'b', 'c', 'd']) announce(plane, p, 100);
    const reports = await c.finished();
    expect(reports.map((r) => r.attempts)).toEqual([1, 2, 1]);
    const begins = plane.ofType('step-begin').filter((b) => b.step === 1);
    expect(begins.map((b) => b.attempt)).toEqual([0, 1]);
    expect(begins[1].owners).toEqual([0, 0, 0, 0]);
    expect(begins[1].members).toEqual([['a'], ['b', 'd']]);
    expect(reports[1].members).toEqual([['a'], ['b', 'd']]);
    c.close();
  });

  it('a member vanishing after step-apply does not re-run the step', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: run({ steps: 2 }), minPeers: 4 });
    const dead = new Set<string>();
    scriptPeers(plane, {
      sumsq: [1, 1],
      silent: dead,
      intercept: (msg) => {
        if (msg.type === 'step-apply' && msg.step === 0 && !dead.has('d')) {
          dead.add('d');
          plane.leave('d');
        }
        return false;
      },
    });
    for (const p of ['a', 'b', 'c', 'd']) announce(plane, p, 100);
    const reports = await c.finished();
    expect(reports.map((r) => r.attempts)).toEqual([1, 1]);
    expect(reports[0].members).toEqual([['a', 'c'], ['b']]);
    expect(plane.ofType('step-begin')[1].members).toEqual([['a', 'c'], ['b']]);
    c.close();
  });

  it('a peer joining mid-run is placed by compute per layer and copies state from a live replica between steps', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: run({ steps: 3 }), minPeers: 3 });
    scriptPeers(plane, { sumsq: [1, 1] });
    announce(plane, 'a', 100);
    announce(plane, 'b', 100);
    announce(plane, 'c', 100); // both stages 2 layers: 100/2 = 50 each -> tie -> stage 0
    c.events.once('step', () => announce(plane, 'e', 50)); // stage 1: 100/2 = 50 vs stage 0: 200/2 = 100
    const reports = await c.finished();
    const members = plane.ofType('swarm-members');
    expect(members).toHaveLength(2);
    expect(members[1].joins).toEqual([{ peer: 'e', stage: 1, source: 'b' }]);
    expect(members[1].stages).toEqual([
      ['a', 'c'],
      ['b', 'e'],
    ]);
    expect(members[1].step).toBeGreaterThan(0);
    expect(reports[reports.length - 1].members).toEqual([
      ['a', 'c'],
      ['b', 'e'],
    ]);
    c.close();
  });

  it('drops a replica that does not confirm the update (it would be out of sync with its twin)', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: run({ steps: 2 }), minPeers: 4, stepTimeoutMs: 200 });
    const dead = new Set<string>();
    scriptPeers(plane, {
      sumsq: [1, 1],
      silent: dead,
      intercept: (msg) => {
        if (msg.type === 'step-apply' && msg.step === 0) dead.add('c'); // alive, but silent from now on
        return false;
      },
    });
    for (const p of ['a', 'b', 'c', 'd']) announce(plane, p, 100);
    const reports = await c.finished();
    expect(reports[0].members).toEqual([['a'], ['b', 'd']]);
    expect(plane.sent.some((x) => x.msg.type === 'shutdown' && x.to === 'c')).toBe(true);
    expect(plane.ofType('step-begin')[1].members).toEqual([['a'], ['b', 'd']]);
    c.close();
  });

  it('pauses and then fails the run when a stage loses its last replica and no copy of it exists', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: run(), minPeers: 2, restoreWaitMs: 200 });
    const dead = new Set<string>();
    scriptPeers(plane, {
      sumsq: [1, 1],
      silent: dead,
      intercept: (msg) => {
        if (msg.type === 'step-begin' && msg.step === 1 && !dead.has('b')) {
          dead.add('b');
          plane.leave('b');
          return true;
        }
        return false;
      },
    });
    announce(plane, 'a', 1);
    announce(plane, 'b', 1);
    await expect(c.finished()).rejects.toThrow(/stage 1 has no live replica and no copy of it exists/);
    expect(plane.ofType('run-state')).toEqual([{ type: 'run-state', paused: true, reason: expect.stringMatching(/stage 1/) as unknown, step: 1 }]);
    c.close();
  });
});

describe('run config', () => {
  it('accepts contiguous stages and rejects gaps, overlaps, short cover and T > block_size', () => {
    expect(run().stages).toEqual([
      { layerStart: 0, layerEnd: 2 },
      { layerStart: 2, layerEnd: 4 },
    ]);
    expect(() =>
      run({
        stages: [
          { layerStart: 0, layerEnd: 1 },
          { layerStart: 2, layerEnd: 4 },
        ],
      }),
    ).toThrow(/starts at layer 2, expected 1/);
    expect(() =>
      run({
        stages: [
          { layerStart: 0, layerEnd: 3 },
          { layerStart: 2, layerEnd: 4 },
        ],
      }),
    ).toThrow(/expected 3/);
    expect(() => run({ stages: [{ layerStart: 0, layerEnd: 3 }] })).toThrow(/end at layer 3, expected n_layer 4/);
    expect(() =>
      run({
        stages: [
          { layerStart: 0, layerEnd: 0 },
          { layerStart: 0, layerEnd: 4 },
        ],
      }),
    ).toThrow(/empty/);
    expect(() => run({ T: 9 })).toThrow(/exceeds block_size/);
    expect(() => run({ model: { n_layer: 4, n_head: 3, n_embd: 8, vocab_size: 10, block_size: 8 } })).toThrow(/divisible/);
  });

  it('evenStages splits layers contiguously', () => {
    expect(evenStages(5, 3)).toEqual([
      { layerStart: 0, layerEnd: 2 },
      { layerStart: 2, layerEnd: 4 },
      { layerStart: 4, layerEnd: 5 },
    ]);
    expect(() => evenStages(2, 3)).toThrow();
  });
});

describe('Coordinator: a member that cannot link up', () => {
  it('reports an error while linking: the membership is announced again at once (no ready timeout), and it trains', async () => {
    const plane = new FakePlane();
    // A ready timeout far longer than the test: only the error can make the coordinator go on.
    const c = new Coordinator(plane, { run: run(), minPeers: 2, readyTimeoutMs: 600_000 });
    let failures = 1;
    scriptPeers(plane, {
      sumsq: [1, 1],
      intercept: (msg) => {
        if (msg.type !== 'swarm-members' || failures === 0) return false;
        failures--;
        plane.from('a', { type: 'swarm-ready', epoch: msg.epoch });
        plane.from('b', { type: 'status', state: 'error', detail: 'no incoming link from a within 30000 ms' });
        return true;
      },
    });
    for (const p of ['a', 'b']) announce(plane, p, 100);
    const reports = await c.finished();
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
    expect(plane.ofType('swarm-members').map((m) => m.epoch)).toEqual([1, 2]);
    expect(reports[0].members).toEqual([['a'], ['b']]);
  });

  it('fails three epochs in a row: dropped, and the run goes on without it when its stage has another replica', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: run(), minPeers: 3, readyTimeoutMs: 600_000 });
    scriptPeers(plane, {
      sumsq: [1, 1],
      intercept: (msg) => {
        if (msg.type !== 'swarm-members' || !msg.stages.flat().includes('c')) return false;
        for (const p of msg.stages.flat()) if (p !== 'c') plane.from(p, { type: 'swarm-ready', epoch: msg.epoch });
        plane.from('c', { type: 'status', state: 'error', detail: 'link to a did not open' });
        return true;
      },
    });
    for (const p of ['a', 'b', 'c']) announce(plane, p, 100);
    const reports = await c.finished();
    expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
    expect(plane.ofType('swarm-members').filter((m) => m.stages.flat().includes('c'))).toHaveLength(3);
    expect(reports[0].members.flat()).not.toContain('c');
  });
});
