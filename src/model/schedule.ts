// Learning-rate schedule: linear warmup then cosine decay to min_lr (nanoGPT's get_lr), `it` counted from 0.
export interface LrSchedule {
  lr: number;
  minLr: number;
  warmup: number;
  /** Step at which the cosine reaches minLr (usually the run's total steps). */
  decaySteps: number;
}

export function learningRate(it: number, s: LrSchedule): number {
  if (it < s.warmup) return (s.lr * (it + 1)) / (s.warmup + 1);
  if (it >= s.decaySteps) return s.minLr;
  const ratio = (it - s.warmup) / Math.max(1, s.decaySteps - s.warmup);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return s.minLr + coeff * (s.lr - s.minLr);
}
