// Strikes and the robust-aggregation verdict (docs/trust.md "Robust aggregation", "Validators"). Pure: the
// coordinator feeds it reports and acts on what it returns (emit, evict, re-run).
import { verifySignature } from '../net/identity';
import { robustSigningText } from '../protocol/digest-signing';
import type { ControlOf } from '../protocol/messages';

/** What the parts of the coordinator that judge peers (robust aggregation, validators) call. */
export interface Striker {
  /** One strike against `peerId`; `trust.strikes` of them evict it. Returns the peer's strike count. */
  strike(peerId: string, reason: string): number;
}

/** Strike counts per peer identity, for the whole run (an evicted identity stays evicted). */
export class StrikeBook {
  private readonly counts = new Map<string, number>();
  private readonly out = new Set<string>();

  constructor(private readonly limit: number) {}

  /** Adds a strike; returns the count and whether this strike reached the limit (the peer is now evicted). */
  add(peerId: string): { strikes: number; evict: boolean } {
    const strikes = (this.counts.get(peerId) ?? 0) + 1;
    this.counts.set(peerId, strikes);
    const evict = strikes >= this.limit && !this.out.has(peerId);
    if (evict) this.out.add(peerId);
    return { strikes, evict };
  }

  /** Strikes and evictions of a saved run (a resumed coordinator, src/coordinator/run-state.ts). */
  restore(counts: readonly { peer: string; strikes: number }[], evicted: readonly string[]): void {
    for (const c of counts) this.counts.set(c.peer, c.strikes);
    for (const p of evicted) this.out.add(p);
  }

  /** Every peer's strike count (for the saved run). */
  entries(): { peer: string; strikes: number }[] {
    return [...this.counts].map(([peer, strikes]) => ({ peer, strikes }));
  }

  count(peerId: string): number {
    return this.counts.get(peerId) ?? 0;
  }

  evicted(peerId: string): boolean {
    return this.out.has(peerId);
  }

  get evictedIds(): string[] {
    return [...this.out];
  }
}

export type RobustReport = Pick<ControlOf<'grad-sumsq'>, 'value' | 'robust'>;

export interface RobustVerdict {
  /** The stage's sum of squares (the value a strict majority of its replicas reported), null: not finite / none. */
  value: number | null;
  /** Peers to strike, each once, with the reason. */
  strikes: { peerId: string; reason: string }[];
  /** Why the step must re-run (replicas saw different vectors, or disagree on the result); null: apply. */
  rerun: string | null;
}

/** The attempt a robust verdict is about and the members' keys (the coordinator's control plane's keyOf). */
export interface RobustContext {
  runId: string;
  step: number;
  attempt: number;
  keyOf: (peerId: string) => string | undefined;
}

/**
 * Judges one stage's robust grad-sumsq reports (`reports`: by peer; `members`: the stage's replicas in rank order).
 * Every digest a receiver reports for rank j comes with j's signature of it (src/protocol/digest-signing.ts):
 * - A digest without j's valid signature: the reporter lies about what it received (j signs every vector it sends):
 *   the reporter is struck, its claim ignored. So one lying receiver cannot frame an honest sender.
 * - Two validly signed different digests for rank j: proof that j sent different vectors to different replicas
 *   (equivocation): j is struck and the step re-runs (the replicas combined different vectors).
 * - No proof either way (kept from before signatures): a receiver reporting nothing (null) for j while others hold
 *   j's signed digest — j may have withheld its vector from it, or it may lie about receiving none: j is struck and the
 *   step re-runs. A lying receiver can still frame j this way (docs/trust.md "Robust aggregation", known limit).
 *   Also when j's key is unknown (it left): distinct digests strike j, unverified.
 * - A rank a strict majority of receivers excluded (non-finite, norm outlier, wrong length) is struck. Receivers
 *   that saw the same vectors exclude the same ranks, so a minority that excluded a rank is struck instead.
 * - The value: the one a strict majority reported; replicas reporting another are struck (honest replicas that saw
 *   the same vectors compute the same bits). No majority: re-run.
 */
export async function judgeRobust(
  stage: number,
  members: readonly string[],
  reports: ReadonlyMap<string, RobustReport>,
  ctx: RobustContext,
): Promise<RobustVerdict> {
  const strikes = new Map<string, string>();
  const strike = (peerId: string | undefined, reason: string) => {
    if (peerId !== undefined && !strikes.has(peerId)) strikes.set(peerId, reason);
  };
  let rerun: string | null = null;
  const R = members.length;
  const reporters = members.filter((p) => reports.get(p)?.robust);
  // One verification per distinct (rank, digest, signature): honest receivers all report the same one.
  const checked = new Map<string, Promise<boolean>>();
  const signed = (j: number, digest: string, sig: string | null): Promise<boolean> => {
    const key = ctx.keyOf(members[j]);
    if (sig === null || !key) return Promise.resolve(false);
    const k = `${j}|${digest}|${sig}`;
    let p = checked.get(k);
    if (!p) {
      p = verifySignature(key, robustSigningText({ runId: ctx.runId, step: ctx.step, attempt: ctx.attempt, stage, rank: j }, digest), sig);
      checked.set(k, p);
    }
    return p;
  };
  for (let j = 0; j < R; j++) {
    const known = ctx.keyOf(members[j]) !== undefined;
    const valid = new Set<string>();
    let nothing = 0;
    const excluders: { peer: string; reason: string }[] = [];
    for (const p of reporters) {
      const r = reports.get(p)?.robust;
      if (!r) continue;
      const digest = r.digests[j] ?? null;
      if (digest === null) nothing++;
      else if (!known || (await signed(j, digest, r.sigs[j] ?? null))) valid.add(digest);
      else strike(p, `stage ${stage}: reported a digest from rank ${j} without its valid signature`);
      const ex = r.excluded.find((e) => e.rank === j);
      if (ex) excluders.push({ peer: p, reason: ex.reason });
    }
    if (valid.size > 1 || (valid.size === 1 && nothing > 0)) {
      const why = valid.size > 1 ? (known ? 'signed different vectors' : 'different vectors (unverified: its key is gone)') : 'some received nothing';
      strike(members[j], `stage ${stage} rank ${j}: its replicas received different vectors from it (${why})`);
      rerun ??= `stage ${stage}: replicas received different vectors from ${members[j]}`;
    } else if (excluders.length * 2 > reporters.length) {
      strike(members[j], `stage ${stage} rank ${j} excluded: ${excluders[0].reason}`);
    } else {
      // The same vectors everywhere give the same exclusions everywhere: a minority that excluded j lies.
      for (const e of excluders) strike(e.peer, `stage ${stage}: excluded rank ${j} that its stage's majority kept`);
    }
  }
  for (const p of members) if (reports.has(p) && !reports.get(p)?.robust) strike(p, `stage ${stage}: grad-sumsq without the robust report`);
  const votes = new Map<string, { value: number | null; peers: string[] }>();
  for (const p of members) {
    const r = reports.get(p);
    if (!r) continue;
    const k = String(r.value);
    const v = votes.get(k) ?? { value: r.value, peers: [] };
    v.peers.push(p);
    votes.set(k, v);
  }
  const winner = [...votes.values()].find((v) => v.peers.length * 2 > R);
  if (!winner) rerun ??= `stage ${stage}: no majority of replicas agrees on the aggregate`;
  else if (!rerun)
    for (const v of votes.values())
      if (v !== winner) for (const p of v.peers) strike(p, `stage ${stage}: reported an aggregate its stage's majority did not`);
  return { value: winner?.value ?? null, strikes: [...strikes].map(([peerId, reason]) => ({ peerId, reason })), rerun };
}
