// The single-peer engine of a compressed run (docs/compression.md, the invariant): the Trainer split at the run's
// stage boundaries, round-tripping activations and their gradients through the run's codecs in place (same keys as
// the swarm) with the run's learned bottleneck, on the swarm's batches (micro k of step s = sampleBatch(seed, s, k)).
import { createCodec } from '../../src/compress/codec';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import type { Runtime } from '../../src/gpu/runtime';
import { bottleneckAt } from '../../src/model/bottleneck-config';
import { sampleBatch } from '../../src/model/data';
import { Trainer } from '../../src/model/trainer';
import type { RunConfig } from '../../src/protocol/run-config';
import { data } from './harness';

/** The single-peer engine split at the run's stage boundaries, with its codecs and bottleneck, on the same batches. */
export async function compressedReference(run: RunConfig): Promise<{ rt: Runtime; params: Map<string, Float32Array>; losses: number[] }> {
  const c = run.compress;
  if (!c) throw new Error('compressedReference: the run has no compress spec');
  const rt = await nodeRuntime({ quiet: true });
  const after = run.stages.slice(0, -1).map((s) => s.layerEnd);
  const tr = await Trainer.create(rt, {
    config: run.model,
    B: run.B,
    T: run.T,
    schedule: run.schedule,
    optimizer: run.optimizer,
    seed: run.seed,
    tune: false,
    boundaries: { after, act: createCodec(rt, c.act), grad: createCodec(rt, c.grad) },
    bottleneck: bottleneckAt(c.bottleneck, after),
  });
  const losses: number[] = [];
  for (let s = 0; s < run.steps; s++) {
    const micro = Array.from({ length: run.M }, (_, k) => sampleBatch(data().train, { seed: run.seed, step: s, micro: k, B: run.B, T: run.T }));
    losses.push((await tr.step(s, micro)).loss);
  }
  return { rt, params: await tr.exportParams(), losses };
}
