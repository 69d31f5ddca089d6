// Who may send this peer which tensors (docs/trust.md, "Data channels bound to identities"). Links are accepted only
// from members of the current membership (swarm-members), and a link from a peer that left it is closed; on a link,
// only the kinds that member may send: activations from the previous stage, gradients from the next, the tied wte
// gradient from the partner stage, all-reduce / robust-reduce / local-sync / validation payloads from this stage's
// replicas, stage state from the join source the coordinator named. The step-level checks (a gradient only for a
// microbatch sent to that peer, the tie only from the partner replica that sends to this one) are pipelineProblem's,
// which StageRuntime runs with its step's state. Everything else is dropped at the link, before it is buffered.
import type { ControlOf } from '../protocol/messages';
import { VALIDATION_KIND } from '../protocol/validation-tensors';
import { ALLREDUCE_KIND } from './allreduce';
import { SYNC_KIND } from './local-sync';
import { ROBUST_KIND } from './robust-reduce';
import { STATE_KIND } from './state-transfer';
import { CUSTODY_PULL_KIND } from './links';

/** Kinds only this stage's own replicas send each other. */
const REPLICA_KINDS = new Set([ALLREDUCE_KIND, ROBUST_KIND, SYNC_KIND, VALIDATION_KIND]);

export class TensorPolicy {
  private stages: string[][] | null = null;
  private readonly members = new Set<string>();
  /** The replica this peer copies its stage's state from (a swarm-members join naming it), until it arrived. */
  private joinSource: string | null = null;
  /** Custody sources whose checkpoint this peer (their keeper) expects now (src/swarm/peer-checkpoints.ts). */
  private readonly custodySources = new Map<string, number>();

  constructor(private readonly self: string) {}

  /** The membership of a swarm-members message (call on receipt, before linking up). */
  update(msg: Pick<ControlOf<'swarm-members'>, 'stages' | 'joins'>): void {
    this.stages = msg.stages.map((m) => [...m]);
    this.members.clear();
    for (const m of msg.stages) for (const p of m) this.members.add(p);
    const join = msg.joins.find((j) => j.peer === this.self);
    this.joinSource = join ? join.source : null;
  }

  /** The state transfer from the join source is over: nobody may send state any more. */
  stateReceived(): void {
    this.joinSource = null;
  }

  /** A custody message named this peer the keeper of `from`'s checkpoint: admit its stage state until custodyDone. */
  expectCustody(from: string): void {
    this.custodySources.set(from, (this.custodySources.get(from) ?? 0) + 1);
  }

  custodyDone(from: string): void {
    const n = (this.custodySources.get(from) ?? 0) - 1;
    if (n > 0) this.custodySources.set(from, n);
    else this.custodySources.delete(from);
  }

  isMember(peer: string): boolean {
    return peer !== this.self && this.members.has(peer);
  }

  private stageOf(peer: string): number {
    return this.stages?.findIndex((m) => m.includes(peer)) ?? -1;
  }

  /** Why `from` may not send this peer a tensor of `kind` at all, or null. */
  refusal(from: string, kind: string): string | null {
    if (!this.isMember(from)) return `${from} is not a member of the current membership`;
    const mine = this.stageOf(this.self);
    const theirs = this.stageOf(from);
    const S = this.stages?.length ?? 0;
    if (mine < 0) return 'this peer is not a member of the current membership';
    switch (kind) {
      case 'act':
        return theirs === mine - 1 ? null : `act from stage ${theirs}, not the previous stage`;
      case 'grad':
        return theirs === mine + 1 ? null : `grad from stage ${theirs}, not the next stage`;
      case 'tie': {
        const partner = mine === 0 ? S - 1 : mine === S - 1 ? 0 : -1;
        return S > 1 && theirs === partner ? null : `tie from stage ${theirs}, not the partner stage`;
      }
      case STATE_KIND:
        if (from === this.joinSource || this.custodySources.has(from)) return null;
        return `stage state from ${from}, which is not the join source named for this peer (nor an expected custody source)`;
      case CUSTODY_PULL_KIND:
        // Any member: a pull makes the source send only what a custody message from the coordinator named.
        return null;
      default:
        if (REPLICA_KINDS.has(kind)) return theirs === mine ? null : `${kind} from stage ${theirs}, not a replica of stage ${mine}`;
        return `unknown tensor kind ${kind.slice(0, 64)}`;
    }
  }
}

/**
 * The step-level check of a pipeline tensor: `members` the step's (step-begin's), `stage` this peer's. `sentTo`: for
 * a gradient, the peer this one sent the microbatch's activations to.
 */
export function pipelineProblem(
  kind: 'act' | 'grad' | 'tie',
  from: string,
  self: string,
  stage: number,
  members: readonly (readonly string[])[],
  sentTo?: string,
): string | null {
  const S = members.length;
  switch (kind) {
    case 'act':
      return members[stage - 1]?.includes(from) ? null : `act from ${from}, not a replica of the previous stage in this step`;
    case 'grad':
      if (!members[stage + 1]?.includes(from)) return `grad from ${from}, not a replica of the next stage in this step`;
      return sentTo === from ? null : `grad from ${from}, which this peer did not send the microbatch to`;
    case 'tie': {
      // Replica i of one end stage receives from replica i % |other| of the other (stage-runtime exchangeTied).
      const own = members[stage] ?? [];
      const other = members[stage === 0 ? S - 1 : 0] ?? [];
      const i = own.indexOf(self);
      if (S < 2 || (stage !== 0 && stage !== S - 1) || i < 0 || other.length === 0) return 'tie outside the end stages';
      return other[i % other.length] === from ? null : `tie from ${from}, not the partner replica that sends to this one`;
    }
  }
}
