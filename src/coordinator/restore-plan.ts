// What to do when a stage has no live replica (docs/resilience.md "Stage loss"). Pure: given the run's step, who is
// a member of which stage, who waits to join, and which checkpoints the live peers hold, it returns either a plan
// (the lost stage restored at the current step, or the whole run rolled back to the newest step every stage has a
// copy of) or why it must wait. The coordinator (src/coordinator/stage-restore.ts) executes the plan as one
// membership epoch: `restores` load their own checkpoint, `joins` copy from a restored replica or, with
// `checkpoint`, a stored copy (a custodian's).
import type { CheckpointRef } from '../protocol/messages';

export interface RestoreInput {
  /** The step the run is at (steps completed). */
  step: number;
  /** Live members per stage, in rank order (an empty list: the stage is lost). */
  members: readonly (readonly string[])[];
  /** Live peers assigned to a stage and waiting to join (new peers, returning holders), in arrival order. */
  joining: readonly { peer: string; stage: number }[];
  /** Checkpoints each live peer holds (this run's only). */
  holdings: ReadonlyMap<string, readonly CheckpointRef[]>;
}

export interface Restore {
  peer: string;
  stage: number;
  step: number;
  digest: string;
}

export interface Join {
  peer: string;
  stage: number;
  source: string;
  /** The source sends its stored checkpoint at this step (absent: its live state, restored in the same epoch). */
  checkpoint?: number;
}

export type RestorePlan =
  | {
      kind: 'restore';
      /** The step the run continues at: the current one, or k < step (a rollback). */
      step: number;
      /** The new membership, every stage non-empty. */
      stages: string[][];
      restores: Restore[];
      joins: Join[];
      /** The host of each lost stage (swarm-assign before the membership to those whose stage changes). */
      assign: { peer: string; stage: number }[];
      /** The stages that had no live replica. */
      lost: number[];
      /** The digest every replica of each stage must report in swarm-ready (null: not known, a live copy). */
      digests: (string | null)[];
    }
  | { kind: 'wait'; reason: string; lost: number[] };

/** The copies of (stage, step) among the holders, grouped under the digest most of them hold. */
function copiesAt(input: RestoreInput, stage: number, step: number): { digest: string; holders: string[] } | null {
  const byDigest = new Map<string, string[]>();
  for (const [peer, refs] of input.holdings)
    for (const r of refs)
      if (r.stage === stage && r.step === step) {
        const list = byDigest.get(r.digest) ?? [];
        list.push(peer);
        byDigest.set(r.digest, list);
      }
  let best: { digest: string; holders: string[] } | null = null;
  for (const [digest, holders] of byDigest) if (!best || holders.length > best.holders.length) best = { digest, holders };
  return best;
}

function stepsHeld(input: RestoreInput, stage: number): number[] {
  const steps = new Set<number>();
  for (const refs of input.holdings.values()) for (const r of refs) if (r.stage === stage && r.step <= input.step) steps.add(r.step);
  return [...steps].sort((a, b) => b - a);
}

function holds(input: RestoreInput, peer: string, stage: number, step: number, digest: string): boolean {
  return (input.holdings.get(peer) ?? []).some((r) => r.stage === stage && r.step === step && r.digest === digest);
}

export function planRestore(input: RestoreInput): RestorePlan {
  const S = input.members.length;
  const lost = input.members.flatMap((m, s) => (m.length === 0 ? [s] : []));
  if (lost.length === 0) throw new Error('planRestore: no stage is lost');
  // The step to continue at: the current one when every lost stage has a copy of it; else the newest step k that
  // every stage (lost or not) has a copy of.
  let target: number | null = lost.every((s) => copiesAt(input, s, input.step)) ? input.step : null;
  if (target === null)
    for (const k of stepsHeld(input, lost[0])) {
      if (Array.from({ length: S }, (_, s) => s).every((s) => copiesAt(input, s, k))) {
        target = k;
        break;
      }
    }
  if (target === null) {
    const newest = lost.map((s) => {
      const held = stepsHeld(input, s);
      return held.length ? `stage ${s}: newest copy at step ${held[0]}, not every other stage has a copy of it` : `stage ${s}: no copy`;
    });
    return { kind: 'wait', reason: `stage ${lost.join(', ')} lost (${newest.join('; ')})`, lost };
  }
  const k = target;
  const rollback = k < input.step;
  const copies = Array.from({ length: S }, (_, s) => copiesAt(input, s, k));

  // Who stands where: members stay, joiners where they were assigned; then a host for every lost stage.
  const stageOf = new Map<string, number>();
  for (const [s, m] of input.members.entries()) for (const p of m) stageOf.set(p, s);
  for (const j of input.joining) stageOf.set(j.peer, j.stage);
  const count = (s: number) => [...stageOf.values()].filter((x) => x === s).length;
  const isMember = (p: string) => input.members.some((m) => m.includes(p));
  /** Every host, including one that stays where it was assigned (free() tells it is taken). */
  const assign: { peer: string; stage: number }[] = [];
  const move = (peer: string, stage: number) => {
    assign.push({ peer, stage });
    stageOf.set(peer, stage);
  };
  const free = (p: string) => !assign.some((a) => a.peer === p);
  for (const s of lost) {
    const holder = (p: string) => copies[s]?.holders.includes(p) ?? false;
    // Joiners that may host s: those assigned to s, and those waiting for a stage that keeps its members anyway.
    const joiners = input.joining.filter((j) => free(j.peer) && (j.stage === s || !lost.includes(j.stage)));
    const members = input.members
      .flatMap((m, d) => (lost.includes(d) ? [] : m.filter((p) => free(p)).map((p) => ({ peer: p, stage: d }))))
      .filter((x) => count(x.stage) >= 2);
    const host =
      joiners.find((j) => j.stage === s && holder(j.peer)) ?? // a returning holder
      joiners.find((j) => holder(j.peer)) ??
      joiners.find((j) => j.stage === s) ?? // a new peer assigned to the empty stage
      joiners[0] ??
      members.find((x) => holder(x.peer)) ?? // a member of an over-served stage (a custodian first)
      members.sort((x, y) => count(y.stage) - count(x.stage) || x.stage - y.stage)[0];
    if (!host) return { kind: 'wait', reason: `stage ${s} lost: a copy exists (step ${k}) but no peer can host it`, lost };
    move(host.peer, s);
  }

  // The membership: members in rank order, then the rest of each stage's peers in arrival order.
  const stages: string[][] = Array.from({ length: S }, () => []);
  for (const [s, m] of input.members.entries()) for (const p of m) if (stageOf.get(p) === s) stages[s].push(p);
  for (const j of input.joining) if (!stages.flat().includes(j.peer)) stages[stageOf.get(j.peer) ?? j.stage].push(j.peer);
  for (const a of assign) if (!stages.flat().includes(a.peer)) stages[a.stage].push(a.peer);

  const restores: Restore[] = [];
  const joins: Join[] = [];
  const digests: (string | null)[] = stages.map(() => null);
  for (const [s, peers] of stages.entries()) {
    // Only the lost stages change state without a rollback; with one, every stage goes back to k.
    const c = copies[s];
    if (!rollback && !lost.includes(s)) {
      const source = peers.find(isMember) ?? input.members[s][0];
      for (const p of peers) if (!isMember(p)) joins.push({ peer: p, stage: s, source });
      continue;
    }
    if (!c) throw new Error(`planRestore: stage ${s} has no copy at step ${k}`);
    digests[s] = c.digest;
    const own = peers.filter((p) => holds(input, p, s, k, c.digest));
    for (const p of own) restores.push({ peer: p, stage: s, step: k, digest: c.digest });
    const rest = peers.filter((p) => !own.includes(p));
    for (const p of rest) joins.push(own.length ? { peer: p, stage: s, source: own[0] } : { peer: p, stage: s, source: c.holders[0], checkpoint: k });
  }
  return { kind: 'restore', step: k, stages, restores, joins, assign, lost, digests };
}
