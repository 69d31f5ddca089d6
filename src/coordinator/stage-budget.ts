// What each stage of a run needs of a peer's memory (its model slice: parameters, gradients, AdamW state and the
// activations of its in-flight microbatches; src/model/stage-memory.ts), and whether a peer's budget (peer-info
// memoryBytes) holds any of them. The coordinator assigns a peer only to a stage that fits it.
import { stageBottleneckAt } from '../model/bottleneck-config';
import { stageMemory } from '../model/stage-memory';
import type { StageRange } from '../model/stage-role';
import { slotCount, type RunConfig } from '../protocol/run-config';

/**
 * Training bytes of each stage of the run (in stage order) on a peer whose adapter binds at most `maxBindingBytes`
 * (a head over it runs vocabulary-chunked; unknown: the whole-vocabulary head, the larger).
 */
export function stageTrainBytes(run: RunConfig, maxBindingBytes?: number): number[] {
  return run.stages.map((range) => {
    // The stage's own boundaries carry the bottleneck's halves, as its StageCompute builds it.
    const bottleneck = stageBottleneckAt(run.compress?.bottleneck ?? null, run.model.n_layer, range);
    return stageMemory(run.model, range, { B: run.B, T: run.T }, { slots: slotCount(run), bottleneck, maxBindingBytes }).peerTotal;
  });
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** A planned split in one line: each stage's layers and bytes (and its peer, when given), the whole model's bytes. */
export function describePlan(p: { stages: readonly StageRange[]; bytes: readonly number[]; modelBytes: number; peers?: readonly string[] }): string {
  const stage = (r: StageRange, s: number) => `[${r.layerStart}, ${r.layerEnd}) ${mib(p.bytes[s])}${p.peers ? ` -> ${p.peers[s]}` : ''}`;
  return `${p.stages.length} stage(s): ${p.stages.map(stage).join(', ')} (${mib(p.modelBytes)} in one place)`;
}

/** Which stages a peer offering `budget` bytes can hold (every stage without a budget). */
export function stagesThatFit(need: readonly number[], budget: number | undefined): boolean[] {
  return need.map((b) => budget === undefined || b <= budget);
}

/** The refusal for a peer whose budget holds no stage of the run (null when one fits). */
export function budgetRefusal(need: readonly number[], budget: number | undefined): string | null {
  if (stagesThatFit(need, budget).some(Boolean)) return null;
  const smallest = need.indexOf(Math.min(...need));
  return (
    `this peer offers ${mib(budget ?? 0)} for its model slice; the smallest stage of this run needs ${mib(need[smallest])} ` +
    `(stage ${smallest}; all: ${need.map(mib).join(', ')}): give it more memory or split the model into more stages`
  );
}
