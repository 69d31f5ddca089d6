// Who may report what to the coordinator (docs/trust.md, "Signed control"). Signatures (src/protocol/signed-control.ts)
// say who sent a message; this says whether that member may send it: a report is accepted only from the member that
// owns it. Anyone in the room may say hello and announce itself; everything about a step comes from the members the
// step's attempt named for that microbatch or stage. What fails is dropped, counted and logged (rate-limited).
import type { ControlMessage } from '../protocol/messages';

/** The running step attempt, as the coordinator announced it. */
export interface AttemptView {
  step: number;
  attempt: number;
  /** Members per stage of this attempt (step-begin's). */
  members: string[][];
  /** owners[mb]: the first-stage replica that owns microbatch mb. */
  owners: string[];
}

export interface AuthorizeContext {
  cur: AttemptView | null;
  /** Local-steps outer sync: the lanes syncing now (sync-begin's members), if one is running. */
  syncing: string[][] | null;
  /** Whether `peer` is an announced member (assigned or linked up, alive). */
  announced(peer: string): boolean;
  /** The validator a `validate` named for (step, stage, worker), if the coordinator asked for one. */
  validatorOf?(step: number, stage: number, worker: string): string | null;
}

/** Why `from` may not send `msg`, or null when it may. Does not check the step/attempt (stale reports are harmless). */
export function refuseReport(from: string, msg: ControlMessage, ctx: AuthorizeContext): string | null {
  const c = ctx.cur;
  const inStage = (members: string[][] | null | undefined, stage: number): boolean => !!members?.[stage]?.includes(from);
  switch (msg.type) {
    case 'hello':
    case 'peer-info':
    case 'status':
    case 'peer-report':
      return null;
    case 'pong':
      return null;
    case 'swarm-ready':
    case 'checkpoint-saved':
    case 'link-down':
      return ctx.announced(from) ? null : `${msg.type} from a peer that is not an announced member`;
    case 'mb-done':
      if (!c) return 'mb-done outside a step';
      return c.owners[msg.mb] === from ? null : `mb-done of microbatch ${msg.mb}, which ${c.owners[msg.mb] ?? 'nobody'} owns`;
    case 'mb-loss': {
      if (!c) return 'mb-loss outside a step';
      if (msg.mb >= c.owners.length) return `mb-loss of microbatch ${msg.mb} of ${c.owners.length}`;
      return inStage(c.members, c.members.length - 1) ? null : 'mb-loss from a peer that is not a last-stage member';
    }
    case 'grad-sumsq':
    case 'step-done':
    case 'step-trace':
      if (!c) return `${msg.type} outside a step`;
      return inStage(c.members, msg.stage) ? null : `${msg.type} for stage ${msg.stage} from a peer that is not its member`;
    case 'sync-done':
      return inStage(ctx.syncing ?? c?.members, msg.stage) ? null : `sync-done for stage ${msg.stage} from a peer that is not its member`;
    case 'validation': {
      const named = ctx.validatorOf?.(msg.step, msg.stage, msg.worker);
      if (named !== undefined && named !== null) return named === from ? null : `validation of ${msg.worker} from a peer that is not its validator`;
      if (!c) return 'validation outside a step';
      return inStage(c.members, msg.stage) ? null : `validation for stage ${msg.stage} from a peer that is not its member`;
    }
    default:
      // Coordinator -> peer messages (step-apply, shutdown, ...) have no business arriving here.
      return `${msg.type} is the coordinator's to send`;
  }
}

/**
 * The loss of microbatch mb among what last-stage members reported: `route` names the last-stage peer the
 * microbatch went through (from the step traces, when known); without it, the only last-stage member's.
 */
export function lossOfReports(
  reports: ReadonlyMap<string, number | null> | undefined,
  lastStage: readonly string[],
  route: string | null,
): number | null | undefined {
  if (!reports) return undefined;
  const by = route ?? (lastStage.length === 1 ? lastStage[0] : null);
  if (by !== null) return reports.get(by);
  // Several last-stage replicas and no trace yet: the reports must agree, else the loss is unknown.
  const values = new Set(reports.values());
  return values.size === 1 ? [...values][0] : null;
}

/** Counts refused reports per type and logs them, the first few of each type and then every 100th. */
export class ReportGate {
  readonly refused = new Map<string, number>();
  constructor(private readonly log: (s: string) => void) {}

  /** Records a refusal. */
  refuse(from: string, type: string, why: string): void {
    const n = (this.refused.get(type) ?? 0) + 1;
    this.refused.set(type, n);
    if (n <= 5 || n % 100 === 0) this.log(`refused ${type} from ${from} (${n} so far): ${why}`);
  }

  get total(): number {
    let n = 0;
    for (const v of this.refused.values()) n += v;
    return n;
  }
}
