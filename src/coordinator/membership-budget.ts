// How many waiting peers one membership epoch can admit. The epoch's swarm-members (every member id, its speed, the
// joins) and the step-begin that follows it (M owner ids and every member id again) must pass the protocol's schema
// (src/protocol/messages.ts: a stage <= 256 members, <= 256 joins) and fit the wire: every control message travels
// signed, its JSON text escaped once more inside the signed envelope, and that envelope must stay within
// MAX_CONTROL_BYTES (60 KiB; the signaling server refuses a larger control payload, and SignedControl.sendControl
// throws before sending it). controlBody (src/protocol/signed-control.ts) is that exact check, made here on each
// message at its longest (atLongest: speeds, epoch and step change while the membership stands); this module only
// decides who fits. Peers left out stay waiting (standby) and are admitted in a later epoch, when members leave.
// Pure given a pure `messages`.
import type { ControlMessage } from '../protocol/messages';
import { controlBody } from '../protocol/signed-control';

/** messages.ts: a stage has at most 256 members; at most 256 joins per swarm-members. */
export const MAX_STAGE_MEMBERS = 256;
export const MAX_JOINS = 256;

export interface Candidate {
  peer: string;
  stage: number;
}

/** Why a waiting peer was not admitted. */
export type StandbyLimit = 'stage-members' | 'joins' | 'wire';

export interface AdmissionInput {
  /** The members of each stage now. */
  current: readonly (readonly string[])[];
  /** Waiting peers, in the order they should be admitted. */
  waiting: readonly Candidate[];
  /** Whether admitted peers join a running swarm (each one is a join entry of swarm-members). */
  joining: boolean;
  /**
   * The messages the epoch admitting `admitted` (appended to their stages in `stages`) would send: its
   * swarm-members and the step-begin after it, built as the coordinator builds them; null for one it would not
   * send at that membership (no step-begin while the first stage is empty). Always the same count, in one order.
   */
  messages: (stages: string[][], admitted: readonly Candidate[]) => (ControlMessage | null)[];
}

export interface Admission {
  admitted: Candidate[];
  standby: { peer: string; limit: StandbyLimit }[];
  /**
   * Messages that do not fit even with no peer admitted (e.g. a step-begin whose M owners alone exceed the wire):
   * not a membership problem, so they are left out of the admission check; why each one does not fit.
   */
  overBudget: string[];
}

/**
 * A speed as swarm-members carries it: three significant digits, at most 9.99e11 tokens/s. Speeds only weigh routing
 * and ownership, and 17 digits of a noisy timing cost ~20 bytes a member of the broadcast that bounds the swarm.
 */
export function wireSpeed(x: number): number {
  return Number.isFinite(x) ? Number(Math.min(Math.max(x, 0), 9.99e11).toPrecision(3)) : x;
}

/** The longest JSON form of a wireSpeed (12 characters). */
export const LONGEST_NUMBER = 999_000_000_000;

/**
 * `msg` with every field that changes while the membership stands at its longest: speeds are re-measured every step
 * and epoch, step and attempt count up, so a membership that fits at this form keeps fitting until it changes.
 */
export function atLongest(msg: ControlMessage): ControlMessage {
  const far = Number.MAX_SAFE_INTEGER;
  if (msg.type === 'swarm-members') return { ...msg, epoch: far, step: far, speeds: msg.stages.map((m) => m.map(() => LONGEST_NUMBER)) };
  if (msg.type === 'step-begin') return { ...msg, step: far, attempt: far };
  return msg;
}

/** Why `msg` cannot be sent (schema or signed size), or null when it can. */
export function wireProblem(msg: ControlMessage): string | null {
  try {
    controlBody(msg);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export function admit(input: AdmissionInput): Admission {
  const standby: Admission['standby'] = [];
  const sizes = input.current.map((m) => m.length);
  // The schema caps first, in order: a peer of a full stage must not block the peers behind it.
  const capped: Candidate[] = [];
  for (const c of input.waiting) {
    if (sizes[c.stage] >= MAX_STAGE_MEMBERS) standby.push({ peer: c.peer, limit: 'stage-members' });
    else if (input.joining && capped.length >= MAX_JOINS) standby.push({ peer: c.peer, limit: 'joins' });
    else {
      sizes[c.stage]++;
      capped.push(c);
    }
  }
  const build = (k: number) => {
    const admitted = capped.slice(0, k);
    const stages = input.current.map((m) => [...m]);
    for (const c of admitted) stages[c.stage].push(c.peer);
    return input.messages(stages, admitted);
  };
  // Each message as small as it gets: with nobody admitted, or (one not sent then, e.g. no step-begin before the
  // first stage has a member) with the fewest admitted that send it. One that does not fit even then is exempt.
  const first = build(0);
  const exempt = first.map(() => false);
  const overBudget: string[] = [];
  for (let i = 0; i < first.length; i++) {
    let k = 0;
    let msg = first[i];
    while (msg === null && k < capped.length) msg = build(++k)[i];
    const why = msg === null ? null : wireProblem(atLongest(msg));
    if (why !== null) {
      exempt[i] = true;
      overBudget.push(why);
    }
  }
  const fits = (k: number) => build(k).every((m, i) => m === null || exempt[i] || wireProblem(atLongest(m)) === null);
  // Every message only grows with each peer admitted: the longest prefix that fits, by bisection.
  // The one-more check first: on standby with no room (asked before every step) that is the only build.
  let lo = 0;
  let hi = capped.length;
  if (hi > 0 && fits(1)) {
    lo = 1;
    if (fits(hi)) lo = hi;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (fits(mid)) lo = mid;
      else hi = mid;
    }
  }
  for (const c of capped.slice(lo)) standby.push({ peer: c.peer, limit: 'wire' });
  return { admitted: capped.slice(0, lo), standby, overBudget };
}

/** One line on the standby peers, by limit ('' when none). */
export function standbySummary(a: Pick<Admission, 'standby'>): string {
  return a.standby.length === 0 ? '' : `${a.standby.length} peer(s) on standby: ${standbyReasons(a)}`;
}

/** Why the standby peers wait: how many for each limit ('' when none). */
export function standbyReasons(a: Pick<Admission, 'standby'>): string {
  const by = new Map<StandbyLimit, number>();
  for (const s of a.standby) by.set(s.limit, (by.get(s.limit) ?? 0) + 1);
  const words: Record<StandbyLimit, string> = {
    'stage-members': `their stage is at the protocol's ${MAX_STAGE_MEMBERS} members`,
    joins: `an epoch takes at most ${MAX_JOINS} joins`,
    wire: 'swarm-members or step-begin would exceed the signed control message size',
  };
  return [...by].map(([l, n]) => `${n} because ${words[l]}`).join('; ');
}
