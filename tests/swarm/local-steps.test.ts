// Local-steps mode's invariant (docs/compression.md "Local steps"): S=2 x R=2 Node peers trained with H inner steps
// between compressed outer syncs end on the weights of the single-process simulation (R whole-model Trainers, the
// same codec, error feedback and outer Nesterov step), and the replicas of each stage are bitwise equal after every
// sync.
import { afterEach, describe, expect, it } from 'vitest';
import type { CodecSpec } from '../../src/compress/spec';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import { simulateLocalSteps } from '../../src/model/local-sim';
import { runLocalSimOptions } from '../../src/coordinator/run-model';
import type { RunConfig } from '../../src/protocol/run-config';
import { compareToReference, data, startSwarm, tinyRun, type Swarm } from './harness';
import { sameBits } from '../support/bits';

let swarm: Swarm | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
  for (const c of cleanups.splice(0)) c();
});

// As the per-step parity test: max |swarm − sim| <= TOL * max(1, max |sim|) per tensor. A quantizing codec can turn
// a last-bit difference of the inner steps into one quantization step of one value, which error feedback carries
// to the next sync; the outer lr bounds what that moves.
const TOL = 1e-4;

function localRun(runId: string, codec: CodecSpec): RunConfig {
  return tinyRun(
    runId,
    4,
    [
      [0, 2],
      [2, 4],
    ],
    {
      steps: 5,
      compress: {
        act: { kind: 'fp32' },
        grad: { kind: 'fp32' },
        bottleneck: null,
        sync: { mode: 'local', H: 2, outerLr: 0.7, outerMomentum: 0.9, codec },
      },
    },
  );
}

const CODECS: [string, CodecSpec][] = [
  ['int8 with error feedback', { kind: 'int8', block: 64, rounding: 'nearest' }],
  ['top-k 10% with error feedback', { kind: 'topk', fraction: 0.1 }],
];

describe('local-steps mode matches its single-process simulation', () => {
  for (const [label, codec] of CODECS) {
    it(`S=2, R=2, H=2, 5 steps (syncs after steps 1, 3 and the last), ${label}`, async () => {
      const run = localRun(`local-${codec.kind}`, codec);
      swarm = await startSwarm(run, `local-${codec.kind}`, { minPeers: 4 });
      const synced: string[] = [];
      for (const id of ['l0', 'l1', 'l2', 'l3']) {
        const p = await swarm.addPeer(id, 1000);
        p.events.on('assigned', () => p.runtime!.events.on('synced', ({ step }) => synced.push(`${id}@${step}`)));
      }
      const reports = await swarm.coordinator.finished();
      expect(reports.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
      expect(reports.map((r) => r.synced)).toEqual([false, true, false, true, true]);
      // Every sync: each stage's replicas reported the same params digest.
      for (const r of reports.filter((x) => x.synced)) expect(r.replicasAgree, `step ${r.step}`).toBe(true);
      expect(synced.length).toBe(4 * 3);

      const byStage = [0, 1].map((s) => swarm!.peers.filter((p) => p.runtime!.stageIndex === s));
      expect(byStage.map((m) => m.length)).toEqual([2, 2]);
      for (const [a, b] of byStage) {
        const [x, y] = [await a.runtime!.stage.params.readFlat('params'), await b.runtime!.stage.params.readFlat('params')];
        expect(sameBits(x, y), `stage ${a.runtime!.stageIndex} replicas bitwise equal`).toBe(true);
        // Inner AdamW state is per replica: the lanes saw different microbatches.
        const [ma, mb] = [await a.runtime!.stage.params.readFlat('m'), await b.runtime!.stage.params.readFlat('m')];
        expect(sameBits(ma, mb)).toBe(false);
      }
      // Lanes are pinned: replica r of stage 0 hands its microbatches only to replica r of stage 1 (2 steps x 5).
      for (const p of swarm.peers) expect(p.runtime!.counters.forward).toBe((run.M / 2) * run.steps);

      const rt = await nodeRuntime({ quiet: true });
      cleanups.push(() => rt.destroy());
      const sim = await simulateLocalSteps(rt, runLocalSimOptions(rt, run, data().train, 2));
      expect(sim.syncs).toEqual([1, 3, 4]);
      const cmp = await compareToReference(swarm.peers, sim.replicas[0]);
      console.log(
        `local ${label}: ${cmp.checked} tensors, worst ${cmp.worst.name} max|diff| ${cmp.worst.maxAbs.toExponential(2)} (score ${cmp.worst.score.toExponential(2)}); ` +
          `losses swarm ${reports.map((r) => r.loss.toFixed(5)).join(' ')} sim ${sim.losses.map((l) => l.toFixed(5)).join(' ')}; ` +
          `sync payload ${sim.payloadBytes[0]} B per replica`,
      );
      for (let s = 0; s < run.steps; s++) expect(Math.abs(reports[s].loss - sim.losses[s])).toBeLessThan(1e-4 * Math.max(1, sim.losses[s]));
      expect(cmp.worst.score).toBeLessThan(TOL);
      // The simulation's replicas are equal after the final sync, and the run moved the weights.
      for (const [name, w] of sim.replicas[0]) expect(sameBits(w, sim.replicas[1].get(name)!), name).toBe(true);
    }, 120_000);
  }
});
