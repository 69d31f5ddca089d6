// The whole model a run trains, as the single-peer engine and a checkpoint see it: GPT-2 plus, when the run's
// compress spec has one, the learned bottleneck at every boundary between the run's stages.
import { COMPRESS_NONE, type CompressSpec } from '../compress/spec';
import { bottleneckAt, type BottleneckConfig } from '../model/bottleneck-config';
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
