// One completed step's report (the Coordinator's `step` event, the loss curve, the saved run's reports).
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
}
