// One completed step's report (the Coordinator's `step` event, the loss curve, the saved run's reports).
import type { StageTime } from '../protocol/stage-time';

export interface StepReport {
  step: number;
  /** Attempts it took (1 = no restart). */
  attempts: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping, and the clip factor applied. */
  gradNorm: number;
  scale: number;
  /** Peers per stage that applied the update. */
  members: string[][];
  /** Replicas of every stage reported the same params digest (local-steps mode: after the step's outer sync). */
  replicasAgree: boolean;
  /** Local-steps mode: the outer sync ran after this step. */
  synced?: boolean;
  ms: number;
  /**
   * Per stage: where its replicas' step time went (the mean of their step-done reports, src/protocol/stage-time.ts);
   * null where none reported it. Not kept in a saved run.
   */
  time?: (StageTime | null)[];
}
