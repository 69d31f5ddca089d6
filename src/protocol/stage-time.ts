// Where a stage's step time goes (issue: pipeline efficiency): each peer measures its own step attempt and reports it
// in step-done; the coordinator averages the replicas of each stage into the step's report, which the bench and the
// coordinator page show. Milliseconds of one step attempt, from the peer's step-begin to its step-done:
//   compute  the stage's GPU chain: forward, backward and loss, the reduce's reads and writes, the optimizer (GPU time
//            and launching, with the readbacks of the boundary tensors);
//   codec    host side of the boundary codecs (decode, and encode less its GPU wait); the codecs' kernels are compute;
//   send     signing and sending the boundary tensors, checking and copying the ones received;
//   sync     the reduce and the apply waiting on others (the all-reduce, the tied-embedding exchange, the coordinator);
//   wait     the rest: idle, waiting for activations or gradients (the pipeline's bubble) or the coordinator's begin.
// The parts are measured on one JS thread, so they never overlap except where a compute call awaits the GPU while the
// peer signs or sends (then both count): `wait` is the step's wall time less the others, never below 0.
import { z } from 'zod';

export const STAGE_TIME_PARTS = ['compute', 'codec', 'send', 'sync', 'wait'] as const;
export type StageTimePart = (typeof STAGE_TIME_PARTS)[number];

const ms = z.number().nonnegative().max(1e9);

export const stageTimeSchema = z.object({
  /** The attempt's wall time on this peer (step-begin to step-done). */
  wall: ms,
  compute: ms,
  codec: ms,
  send: ms,
  sync: ms,
  wait: ms,
});

export type StageTime = z.infer<typeof stageTimeSchema>;

export function emptyStageTime(): StageTime {
  return { wall: 0, compute: 0, codec: 0, send: 0, sync: 0, wait: 0 };
}

/** The mean of some replicas' times (null: none reported). */
export function meanStageTime(times: readonly StageTime[]): StageTime | null {
  if (times.length === 0) return null;
  const out = emptyStageTime();
  for (const t of times) for (const k of ['wall', ...STAGE_TIME_PARTS] as const) out[k] += t[k] / times.length;
  return out;
}

/** Share of the wall time a part took, 0..1 (0 for an empty time). */
export function shareOf(t: StageTime, part: StageTimePart): number {
  return t.wall > 0 ? Math.min(1, t[part] / t.wall) : 0;
}
