// Per-attempt microbatch deadlines (docs/resilience.md, "Stragglers and frozen peers"). The coordinator times every
// completed attempt's microbatch phase (step-begin sent -> every mb-done and mb-loss in) and expects the next one
// within 4 x the median of the last 8, never less than `minMs` (a tiny model's phase is milliseconds; jitter of a
// loaded machine must not look like a freeze) and never more than the step timeout (past it the step re-runs anyway).
// Before any observation the first step's allowance applies: the first step includes the warm-up (every GPU
// pipeline compiled on first use, seconds on lavapipe), which no later step pays, so it gets the whole step timeout.

export interface DeadlineOptions {
  /** The coordinator's step timeout (no progress for this long re-runs the step): the deadline's ceiling. */
  stepTimeoutMs: number;
  /** Floor of the deadline (default 2000). */
  minMs?: number;
  /** Completed attempts remembered (default 8). */
  window?: number;
  /** Deadline = factor x the median phase (default 4). */
  factor?: number;
}

export const DEFAULT_MB_DEADLINE_MIN_MS = 2000;

export class MicrobatchDeadlines {
  private readonly phases: number[] = [];
  private readonly minMs: number;
  private readonly window: number;
  private readonly factor: number;

  constructor(private readonly opts: DeadlineOptions) {
    this.minMs = opts.minMs ?? DEFAULT_MB_DEADLINE_MIN_MS;
    this.window = Math.max(1, Math.floor(opts.window ?? 8));
    this.factor = opts.factor ?? 4;
  }

  /** A completed attempt's microbatch phase, ms. Non-finite or negative figures are ignored. */
  observe(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.phases.push(ms);
    if (this.phases.length > this.window) this.phases.shift();
  }

  /** Phases observed so far (newest last, at most `window`). */
  get observed(): readonly number[] {
    return this.phases;
  }

  /** The median of the remembered phases, or null before the first. */
  median(): number | null {
    if (this.phases.length === 0) return null;
    const s = [...this.phases].sort((a, b) => a - b);
    const h = s.length >> 1;
    return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
  }

  /** The next attempt's microbatch deadline, ms after its step-begin. */
  deadlineMs(): number {
    const ceiling = this.opts.stepTimeoutMs;
    const m = this.median();
    if (m === null) return ceiling; // first-step allowance: the warm-up
    return Math.min(ceiling, Math.max(this.minMs, this.factor * m));
  }
}
