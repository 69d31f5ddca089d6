// The single-process simulation of local-steps mode (docs/compression.md "Local steps"): R replicas of the whole
// model, each a Trainer of its own (nothing shared), lane r trained on microbatches k ≡ r (mod R) of every step; every
// H steps and after the last step, the same compressed pseudo-gradient exchange with error feedback and the same
// outer Nesterov step the swarm's stage replicas run (OuterState). The swarm in local mode must end on its weights.
import type { Runtime } from '../gpu/runtime';
import type { GPTConfig } from './config';
import { sampleBatch } from './data';
import { isSyncStep, laneMicrobatches, OuterState, type OuterHyper, type SyncCodec } from './outer-optimizer';

export { isSyncStep, laneMicrobatches };
import type { LrSchedule } from './schedule';
import type { OptimizerHyper } from './stage';
import { Trainer } from './trainer';

export interface LocalSimOptions {
  config: GPTConfig;
  B: number;
  T: number;
  /** Microbatches per step (all lanes together). */
  M: number;
  steps: number;
  schedule: LrSchedule;
  optimizer: OptimizerHyper;
  seed: number;
  tokens: Uint32Array;
  /** Replicas (lanes). */
  R: number;
  /** Inner steps between syncs. */
  H: number;
  outer: OuterHyper;
  /** The sync codec (built from the run's `compress.sync.codec`). */
  codec: SyncCodec;
  /** Initial weights; default GPT-2 init from `seed`. */
  initial?: Map<string, Float32Array>;
}

export interface LocalSimResult {
  /** Mean loss per step over all M microbatches (each lane's mean weighted by its microbatch count). */
  losses: number[];
  /** Steps after which a sync ran. */
  syncs: number[];
  /** Every replica's weights at the end (equal after the final sync). */
  replicas: Map<string, Float32Array>[];
  /** Sync payload bytes per replica per sync (what each replica sends to each of the others). */
  payloadBytes: number[];
}

export async function simulateLocalSteps(rt: Runtime, o: LocalSimOptions): Promise<LocalSimResult> {
  if (!Number.isInteger(o.R) || o.R < 1 || o.R > o.M) throw new Error(`simulateLocalSteps: R ${o.R} must be in 1..M (${o.M})`);
  const trainers: Trainer[] = [];
  for (let r = 0; r < o.R; r++) {
    trainers.push(
      await Trainer.create(rt, {
        config: o.config,
        B: o.B,
        T: o.T,
        schedule: o.schedule,
        optimizer: o.optimizer,
        seed: o.seed,
        initial: o.initial,
        tune: false,
      }),
    );
  }
  const outers = trainers.map((t) => new OuterState(rt, t.stage.params));
  const losses: number[] = [];
  const syncs: number[] = [];
  const payloadBytes: number[] = [];
  try {
    for (let s = 0; s < o.steps; s++) {
      let sum = 0;
      for (let r = 0; r < o.R; r++) {
        const ks = laneMicrobatches(o.M, o.R, r);
        const micro = ks.map((k) => sampleBatch(o.tokens, { seed: o.seed, step: s, micro: k, B: o.B, T: o.T }));
        const res = await trainers[r].step(s, micro);
        sum += res.loss * ks.length;
      }
      losses.push(sum / o.M);
      if (!isSyncStep(s, o.H, o.steps)) continue;
      const payloads: Uint8Array[] = [];
      for (let r = 0; r < o.R; r++) payloads.push(await outers[r].encode(o.codec, { seed: o.seed, step: s, lane: r }));
      for (const outer of outers) outer.apply(o.codec, payloads, o.outer);
      syncs.push(s);
      payloadBytes.push(...payloads.map((p) => p.length));
    }
    const replicas: Map<string, Float32Array>[] = [];
    for (const t of trainers) replicas.push(await t.exportParams());
    return { losses, syncs, replicas, payloadBytes };
  } finally {
    for (const outer of outers) outer.dispose();
  }
}
