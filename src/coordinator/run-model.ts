// The whole model a run trains, as the single-peer engine and a checkpoint see it: GPT-2 plus, when the run's
// compress spec has one, the learned bottleneck at every boundary between the run's stages.
import { createCodec } from '../compress/codec';
import { COMPRESS_NONE, type CompressSpec } from '../compress/spec';
import type { Runtime } from '../gpu/runtime';
import { bottleneckAt, type BottleneckConfig } from '../model/bottleneck-config';
import type { LocalSimOptions } from '../model/local-sim';
import type { TrainerOptions } from '../model/trainer';
import type { RunConfig } from '../protocol/run-config';

/** Block counts after which the run's stage boundaries sit. */
export function runBoundaries(run: RunConfig): number[] {
  return run.stages.slice(0, -1).map((s) => s.layerEnd);
}

export function runCompress(run: RunConfig): CompressSpec {
  return run.compress ?? COMPRESS_NONE;
}

/** The run's bottleneck over the whole model (null: none). */
export function runBottleneck(run: RunConfig): BottleneckConfig | null {
  return bottleneckAt(runCompress(run).bottleneck, runBoundaries(run));
}

/**
 * The single-peer engine's options for a run (the swarm's invariant: S stages x R replicas end on its weights): the
 * run's model, microbatch shape, schedule, optimizer and init seed; with a compress spec, split at the run's stage
 * boundaries with its codecs round-tripped in place (the swarm's keys) and its bottleneck. No matmul tuning.
 */
export function runEngineOptions(rt: Runtime, run: RunConfig): TrainerOptions {
  const c = run.compress;
  const after = runBoundaries(run);
  return {
    config: run.model,
    B: run.B,
    T: run.T,
    schedule: run.schedule,
    optimizer: run.optimizer,
    seed: run.seed,
    tune: false,
    ...(c
      ? { boundaries: { after, act: createCodec(rt, c.act), grad: createCodec(rt, c.grad) }, bottleneck: bottleneckAt(c.bottleneck, after) }
      : {}),
  };
}

/**
 * The single-process simulation of a local-steps run (the invariant of `sync: local`): R whole-model replicas on the
 * run's microbatches, its H, outer step and sync codec.
 */
export function runLocalSimOptions(rt: Runtime, run: RunConfig, tokens: Uint32Array, R: number): LocalSimOptions {
  const sync = run.compress?.sync;
  if (!sync || sync.mode !== 'local') throw new Error(`run ${run.runId} does not sync by local steps`);
  return {
    config: run.model,
    B: run.B,
    T: run.T,
    M: run.M,
    steps: run.steps,
    schedule: run.schedule,
    optimizer: run.optimizer,
    seed: run.seed,
    tokens,
    R,
    H: sync.H,
    outer: { lr: sync.outerLr, momentum: sync.outerMomentum },
    codec: createCodec(rt, sync.codec),
  };
}
