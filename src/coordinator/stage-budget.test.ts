// Memory budgets at join (peer-info memoryBytes): the coordinator assigns a peer only to a stage its budget holds and
// refuses a peer that holds none, saying what the run needs; peers without a budget are assigned as before.
import { describe, expect, it } from 'vitest';
import { stageMemory } from '../model/stage-memory';
import { announce, FakePlane, unitRun } from '../../tests/support/fake-plane';
import { assignStage } from './assignment';
import { Coordinator } from './coordinator';
import { budgetRefusal, stagesThatFit, stageTrainBytes } from './stage-budget';
import { partitionLayers } from '../model/layer-partition';
import type { CoordinatorEvents } from './coordinator';

// A model whose last stage (tied wte, logits [B*T, V]) is much larger than its first: a budget between them fits
// only stage 0.
const run = unitRun({
  runId: 'budget',
  model: { n_layer: 4, n_head: 2, n_embd: 16, vocab_size: 3000, block_size: 8 },
  stages: [
    { layerStart: 0, layerEnd: 3 },
    { layerStart: 3, layerEnd: 4 },
  ],
  M: 4,
});

describe('stage memory budgets', () => {
  it('stageTrainBytes is the model slice of each stage at the run slots and microbatch', () => {
    const need = stageTrainBytes(run);
    expect(need).toEqual(run.stages.map((r) => stageMemory(run.model, r, { B: run.B, T: run.T }, { slots: 4 }).peerTotal));
    expect(need[1]).toBeGreaterThan(need[0]);
    expect(stagesThatFit(need, undefined)).toEqual([true, true]);
    expect(stagesThatFit(need, need[0])).toEqual([true, false]);
    expect(budgetRefusal(need, need[0])).toBeNull();
    expect(budgetRefusal(need, need[0] - 1)).toMatch(
      /this peer offers .* MiB for its model slice; the smallest stage of this run needs .* MiB \(stage 0; all: .*\): give it more memory/,
    );
  });

  it('assignStage never picks a stage the peer does not fit, even an empty one', () => {
    const loads = [
      { layers: 2, throughputs: [] },
      { layers: 2, throughputs: [5] },
      { layers: 2, throughputs: [1] },
    ];
    expect(assignStage(loads)).toBe(0);
    expect(assignStage(loads, Infinity, [false, true, true])).toBe(2);
    expect(assignStage(loads, Infinity, [false, true, false])).toBe(1);
    expect(() => assignStage(loads, Infinity, [false, false, false])).toThrow(/fits no stage/);
  });

  it('the coordinator assigns by budget and refuses a peer that fits no stage, saying why', async () => {
    const need = stageTrainBytes(run);
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run, minPeers: 99 });
    announce(plane, 'small', 100, { memoryBytes: need[0] - 1 }); // fits nothing
    announce(plane, 'first-only', 100, { memoryBytes: need[0] }); // fits stage 0 only
    announce(plane, 'second-only-fits-both', 100, { memoryBytes: need[1] }); // fits both: the empty stage 1
    announce(plane, 'first-only-2', 100, { memoryBytes: need[0] + 1 });
    announce(plane, 'unbounded', 100); // no budget: the least loaded stage per layer
    await new Promise((r) => setTimeout(r, 0));
    const assigned = new Map(plane.sentOf('swarm-assign').map((s) => [s.to, s.msg.stage]));
    const refused = plane.sentOf('refused');
    expect(refused.map((r) => r.to)).toEqual(['small']);
    expect(refused[0].msg.reason).toMatch(/the smallest stage of this run needs/);
    expect(assigned.get('small')).toBeUndefined();
    expect(assigned.get('first-only')).toBe(0);
    expect(assigned.get('second-only-fits-both')).toBe(1);
    expect(assigned.get('first-only-2')).toBe(0);
    // No budget: the stage with the least compute per layer (stage 0: 200 tok/s over 3 layers < stage 1: 100 over 1).
    expect(assigned.get('unbounded')).toBe(0);
    c.close();
  });

  it('planStages: the first minPeers peers wait, then the model is split by their budgets; too small is said', async () => {
    // 6 layers in one placeholder stage; budgets that hold about a third of the model each.
    const r = unitRun({
      runId: 'plan',
      model: { n_layer: 6, n_head: 2, n_embd: 32, vocab_size: 64, block_size: 8 },
      stages: [{ layerStart: 0, layerEnd: 6 }],
      M: 1,
    });
    const dims = { B: r.B, T: r.T };
    const whole = stageMemory(r.model, { layerStart: 0, layerEnd: 6 }, dims, { maxBindingBytes: 2 ** 27 }).processTotal;
    const budget = Math.ceil(0.45 * whole);
    const binding = 2 ** 27;
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: r, minPeers: 3, planStages: true });
    const plans: CoordinatorEvents['plan'][] = [];
    c.events.on('plan', (p) => plans.push(p));
    announce(plane, 'a', 100, { memoryBytes: budget, maxBindingBytes: binding });
    announce(plane, 'gone', 100, { memoryBytes: budget, maxBindingBytes: binding });
    plane.leave('gone'); // a waiting peer that leaves is not planned for
    announce(plane, 'b', 100, { memoryBytes: budget, maxBindingBytes: binding });
    await new Promise((res) => setTimeout(res, 0));
    expect(plane.sentOf('swarm-assign')).toEqual([]);
    expect(plans).toEqual([]);
    // A third peer with a tiny budget: three peers cannot hold it (said, still waiting) ...
    announce(plane, 'tiny', 100, { memoryBytes: 1000, maxBindingBytes: binding });
    await new Promise((res) => setTimeout(res, 0));
    expect(plans.length).toBe(1);
    expect(plans[0]).toMatchObject({ ok: false, waiting: 3 });
    if (!plans[0].ok) expect(plans[0].reason).toMatch(/the swarm is too small for this model/);
    expect(plane.sentOf('swarm-assign')).toEqual([]);
    // ... a fourth with a budget like the first two: planned (the tiny one fits no stage and is refused).
    announce(plane, 'c', 100, { memoryBytes: budget, maxBindingBytes: binding });
    await new Promise((res) => setTimeout(res, 0));
    const want = partitionLayers({ config: r.model, dims, slots: 1, budgets: [budget, budget, 1000, budget], maxBinding: binding });
    expect(want.ok).toBe(true);
    if (!want.ok) return;
    const plan = plans[1];
    expect(plan.ok).toBe(true);
    if (!plan.ok) return;
    expect(plan.stages).toEqual(want.ranges);
    expect(plan.stages.length).toBeGreaterThan(1);
    expect(c.run.stages).toEqual(want.ranges);
    for (const b of plan.bytes) expect(b).toBeLessThanOrEqual(budget);
    const assigns = plane.sentOf('swarm-assign');
    const byPeer = new Map(assigns.map((a) => [a.to, a.msg]));
    plan.peers.forEach((p, s) => expect(byPeer.get(p)?.stage).toBe(s));
    for (const a of assigns) expect(a.msg.run.stages).toEqual(want.ranges);
    expect(plane.sentOf('refused').map((x) => x.to)).toEqual(['tiny']);
    c.close();
  });

  it('planStages refuses a resumed run and a run with a learned bottleneck', () => {
    const bn = unitRun({
      compress: { act: { kind: 'fp32' }, grad: { kind: 'fp32' }, bottleneck: { width: 4, passthrough: false }, sync: { mode: 'per-step' } },
    });
    expect(() => new Coordinator(new FakePlane(), { run: bn, minPeers: 1, planStages: true })).toThrow(/learned bottleneck/);
    const resume = { step: 1 } as unknown as ConstructorParameters<typeof Coordinator>[1]['resume'];
    expect(() => new Coordinator(new FakePlane(), { run: unitRun(), minPeers: 1, planStages: true, resume })).toThrow(/saved split/);
  });
});
