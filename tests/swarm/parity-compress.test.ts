// The swarm invariant with compression on the wire (docs/compression.md): S x R Node peers whose stage boundaries
// carry codec payloads (encoded / decoded on each peer's GPU), optionally through a learned bottleneck, trained K
// steps in per-step mode end on the weights of the single-peer engine that trains the same model with the same
// codecs at the same boundaries (round trip in place, same keys) and the same bottleneck, within float tolerance;
// replicas of a stage stay bitwise identical.
import { afterEach, describe, expect, it } from 'vitest';
import type { CompressSpec } from '../../src/compress/spec';
import { compareToReference, reference, replicasIdentical, startSwarm, tinyRun, type Swarm } from './harness';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  for (const c of cleanups.splice(0)) c();
});

// As tests/swarm/parity.test.ts: per tensor max |swarm - reference| <= TOL * max(1, max |reference|).
const TOL = 1e-5;

interface Case {
  label: string;
  layers: number;
  stages: [number, number][];
  replicas: number;
  compress: CompressSpec;
}

const PER_STEP = { mode: 'per-step' } as const;
const CASES: Case[] = [
  {
    label: 'fp16 activations and gradients, S=2 R=2',
    layers: 4,
    stages: [
      [0, 2],
      [2, 4],
    ],
    replicas: 2,
    compress: { act: { kind: 'fp16' }, grad: { kind: 'fp16' }, bottleneck: null, sync: PER_STEP },
  },
  {
    label: 'int8 stochastic rounding, S=3 R=1',
    layers: 3,
    stages: [
      [0, 1],
      [1, 2],
      [2, 3],
    ],
    replicas: 1,
    compress: {
      act: { kind: 'int8', block: 64, rounding: 'stochastic' },
      grad: { kind: 'int8', block: 64, rounding: 'stochastic' },
      bottleneck: null,
      sync: PER_STEP,
    },
  },
  {
    label: 'bottleneck width 8 with passthrough + int4, S=2 R=2',
    layers: 4,
    stages: [
      [0, 2],
      [2, 4],
    ],
    replicas: 2,
    compress: {
      act: { kind: 'int4', block: 32, rounding: 'nearest' },
      grad: { kind: 'int4', block: 32, rounding: 'stochastic' },
      bottleneck: { width: 8, passthrough: true },
      sync: PER_STEP,
    },
  },
];

describe('swarm parity with the single-peer engine, compressed boundaries (per-step sync)', () => {
  CASES.forEach((c, i) => {
    it(
      c.label,
      async () => {
        const room = `parity-compress-${i}`;
        const run = tinyRun(room, c.layers, c.stages, { compress: c.compress });
        const S = c.stages.length;
        swarm = await startSwarm(run, room, { minPeers: S * c.replicas });
        for (let p = 0; p < S * c.replicas; p++) await swarm.addPeer(`c${i}p${p}`, 1000);
        const reports = await swarm.coordinator.finished();
        expect(reports.map((r) => r.step)).toEqual([0, 1, 2]);
        expect(reports.map((r) => r.attempts)).toEqual([1, 1, 1]);
        const byStage = c.stages.map((_, s) => swarm!.peers.filter((p) => p.runtime?.stageIndex === s));
        expect(byStage.map((m) => m.length)).toEqual(c.stages.map(() => c.replicas));
        for (const r of reports) expect(r.replicasAgree).toBe(true);
        for (const m of byStage) for (let r = 1; r < m.length; r++) expect(await replicasIdentical(m[0], m[r])).toBe(true);
        // The bottleneck's halves live on the stages beside their boundary, under their own names.
        const names = new Set<string>();
        for (const p of swarm.peers) for (const s of p.runtime!.stage.params.slots) names.add(s.spec.name);
        const boundary = c.stages[0][1];
        for (const half of ['down', 'up'])
          expect(names.has(`bottleneck.${boundary}.${half}.weight`), `bottleneck.${boundary}.${half}.weight`).toBe(c.compress.bottleneck !== null);

        const ref = await reference(run);
        cleanups.push(() => ref.rt.destroy());
        const cmp = await compareToReference(swarm.peers, ref.params);
        console.log(
          `${c.label}: ${cmp.checked} tensors, worst ${cmp.worst.name} max|diff| ${cmp.worst.maxAbs.toExponential(2)} ` +
            `(score ${cmp.worst.score.toExponential(2)}); losses swarm ${reports.map((r) => r.loss.toFixed(5)).join(' ')} ` +
            `ref ${ref.losses.map((l) => l.toFixed(5)).join(' ')}; step ms ${reports.map((r) => r.ms.toFixed(0)).join(' ')}`,
        );
        for (let s = 0; s < run.steps; s++) expect(Math.abs(reports[s].loss - ref.losses[s])).toBeLessThan(1e-5 * Math.max(1, ref.losses[s]));
        expect(cmp.worst.score).toBeLessThan(TOL);
        // Every parameter of the reference model lives on some peer (the bottleneck's included).
        for (const name of ref.params.keys()) expect(names.has(name), name).toBe(true);
        // The codecs mattered: the engine with fp32 boundaries (same bottleneck) ends far outside the tolerance.
        const plain = await reference({ ...run, compress: { ...c.compress, act: { kind: 'fp32' }, grad: { kind: 'fp32' } } });
        cleanups.push(() => plain.rt.destroy());
        const off = await compareToReference(swarm.peers, plain.params);
        console.log(`${c.label}: against fp32 boundaries, worst score ${off.worst.score.toExponential(2)}`);
        expect(off.worst.score).toBeGreaterThan(10 * TOL);
      },
      120_000,
    );
  });
});
