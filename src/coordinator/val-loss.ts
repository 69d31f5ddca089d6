// The validation loss of a run's final weights (collected from the swarm by weight-collector.ts), for the final
// summary's `val_loss`: the single-peer engine evaluates them on the same batches as `tabswarm eval` (B = 12,
// T = block_size, up to 50 batches evenly spread over the validation split). The model is the run's, bottleneck
// included; the wire codecs are not part of it (they round activations in flight, not the weights).
import type { Runtime } from '../gpu/runtime';
import { evalBatches } from '../model/data';
import { Trainer } from '../model/trainer';
import type { RunConfig } from '../protocol/run-config';
import { runBottleneck } from './run-model';

export const EVAL_B = 12;
export const EVAL_BATCHES = 50;

export async function validationLoss(
  rt: Runtime,
  run: RunConfig,
  params: Map<string, Float32Array>,
  val: Uint32Array,
  opts: { B?: number; maxBatches?: number } = {},
): Promise<number> {
  const B = opts.B ?? EVAL_B;
  const T = run.model.block_size;
  const trainer = await Trainer.create(rt, {
    config: run.model,
    B,
    T,
    initial: params,
    bottleneck: runBottleneck(run),
    tune: false,
    schedule: { lr: 0, minLr: 0, warmup: 0, decaySteps: 1 },
  });
  return trainer.evaluate(evalBatches(val, { B, T, maxBatches: opts.maxBatches ?? EVAL_BATCHES }));
}
