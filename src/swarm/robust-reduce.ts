// Robust reduce of one stage's gradients (docs/trust.md "Robust aggregation"): in the robust modes every replica
// sends its stage gradient divided by its microbatch count (f32, tensor kind 'robust-grad') to every other replica of
// its stage, and every replica combines all of them in rank order with src/swarm/aggregate.ts. Honest replicas hold
// the same vectors, so they end with the same bits; what a replica received from each rank is reported (digest) so
// the coordinator can tell when a rank sent different vectors to different replicas.
//
// Every vector travels with the SHA-256 digest of its bytes signed by its sender (robustSigningText); a receiver
// checks the signature with the sender's key and reports it with the digest, so a receiver cannot frame an honest
// sender by reporting a digest it never got (src/coordinator/strikes.ts judgeRobust). A vector whose signature does
// not verify is refused like any other (excluded, its digest reported as null).
//
// Refused at decode (the rank is then excluded, a strike): a dtype other than f32, a length other than the stage's,
// a non-finite value. Vectors of another step / attempt / stage / rank than the link's wait in its mailbox under
// their own key (a replica may run ahead) and are never combined into this one; the mailbox is bounded. A rank whose vector does not arrive within the timeout is excluded as missing; a link that closes ends
// the reduce (the coordinator re-runs the step without the vanished replica).
import { TensorDemux } from '../net/tensor-demux';
import { tensorView, type IncomingTensor } from '../net/tensor';
import type { Transport } from '../net/transport';
import { verifySignature } from '../net/identity';
import { robustSigningText, type DigestSigner, type KeyLookup } from '../protocol/digest-signing';
import type { TrustSpec } from '../protocol/run-config';
import { readRobustMeta, robustMeta } from '../protocol/tensors';
import { aggregate, type Exclusion } from './aggregate';
import { digestBytes, digestVector } from './step-trace';

export const ROBUST_KIND = 'robust-grad';

/**
 * What arrived from one rank: its vector and microbatch count, or why it was refused; `bytes` (a copy of what came)
 * and `sig` (the sender's signature of their digest) for the reduce to check.
 */
export type RobustArrival = ({ ok: true; vec: Float32Array; count: number } | { ok: false; reason: string }) & {
  bytes: Uint8Array | null;
  sig: string;
};

type Waiter = { resolve: (a: RobustArrival) => void; reject: (e: Error) => void };

export class LinkClosed extends Error {
  override name = 'LinkClosed';
}

/** One per transport: keeps the peer's 'robust-grad' vectors by (step, attempt, stage, rank) until the reduce takes them. */
export class RobustMailbox {
  private static readonly attached = new WeakMap<Transport, RobustMailbox>();
  /** Vectors kept at most (a reduce takes them at once; more means a peer runs far ahead, or floods). */
  static maxBuffered = 8;
  private readonly box = new Map<string, RobustArrival>();
  private readonly waiters = new Map<string, Waiter>();
  /** Tensors dropped before any check could apply (unreadable meta, buffer full). */
  dropped = 0;
  lastProblem = '';

  /** Vectors kept for reduces that have not taken them yet. */
  get buffered(): number {
    return this.box.size;
  }

  static of(t: Transport): RobustMailbox {
    let m = RobustMailbox.attached.get(t);
    if (!m) {
      m = new RobustMailbox(t);
      RobustMailbox.attached.set(t, m);
    }
    return m;
  }

  private constructor(t: Transport) {
    TensorDemux.of(t).on(ROBUST_KIND, (x) => this.deliver(x));
    t.onClose((info) => {
      for (const w of this.waiters.values()) w.reject(new LinkClosed(`link to ${t.peerId} closed during a robust reduce (${info.reason})`));
      this.waiters.clear();
      this.box.clear();
    });
  }

  static key(step: number, attempt: number, stage: number, rank: number): string {
    return `${step}:${attempt}:${stage}:${rank}`;
  }

  /** Decode + checks that need no context (the length and the rank are checked by the taker). */
  private static decode(x: IncomingTensor, count: number, sig: string): RobustArrival {
    const bytes = x.bytes.slice();
    if (x.dtype !== 'f32') return { ok: false, reason: `dtype ${x.dtype}, expected f32`, bytes, sig };
    const vec = Float32Array.from(tensorView(x) as Float32Array);
    for (let i = 0; i < vec.length; i++) if (!Number.isFinite(vec[i])) return { ok: false, reason: 'non-finite', bytes, sig };
    return { ok: true, vec, count, bytes, sig };
  }

  private deliver(x: IncomingTensor): void {
    const m = readRobustMeta(x.meta);
    if (!m.ok) {
      this.dropped++;
      this.lastProblem = m.error;
      return;
    }
    const { step, attempt, stage, rank, count, sig } = m.value;
    const key = RobustMailbox.key(step, attempt, stage, rank);
    let got: RobustArrival;
    try {
      got = RobustMailbox.decode(x, count, sig);
    } catch (err) {
      got = { ok: false, reason: `undecodable: ${err instanceof Error ? err.message : String(err)}`.slice(0, 120), bytes: null, sig };
    }
    const w = this.waiters.get(key);
    if (w) {
      this.waiters.delete(key);
      w.resolve(got);
      return;
    }
    if (this.box.has(key)) return; // a second vector for the same key: the first one counts
    if (this.box.size >= RobustMailbox.maxBuffered) {
      // Oldest out: a stale attempt's vector is never taken.
      const oldest = this.box.keys().next().value;
      if (oldest !== undefined) this.box.delete(oldest);
      this.dropped++;
      this.lastProblem = 'robust mailbox full';
    }
    this.box.set(key, got);
  }

  /** What rank `rank` sent for (step, attempt, stage); resolves `null` on timeout, rejects if the link closes. */
  take(step: number, attempt: number, stage: number, rank: number, timeoutMs: number): Promise<RobustArrival | null> {
    const key = RobustMailbox.key(step, attempt, stage, rank);
    const got = this.box.get(key);
    if (got) {
      this.box.delete(key);
      return Promise.resolve(got);
    }
    return new Promise<RobustArrival | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        resolve(null);
      }, timeoutMs);
      this.waiters.set(key, {
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }
}

export interface RobustReduceInput {
  /** Transports to the stage's replicas by rank (undefined at own rank). */
  links: readonly (Transport | undefined)[];
  rank: number;
  step: number;
  attempt: number;
  stage: number;
  /** This replica's stage gradient: the sum over the microbatches whose backward ran here. */
  grad: Float32Array;
  /** Those microbatches' count (0: none ran here; the replica then contributes nothing). */
  count: number;
  /** Microbatches in the step: the aggregate (a mean per microbatch) x M is the step's gradient. */
  M: number;
  trust: TrustSpec;
  timeoutMs: number;
  runId: string;
  /** Signs this replica's vector's digest (its identity). */
  signer: DigestSigner;
  /** Public keys by member id: each received vector's signature is checked with its link's peer's key. */
  keyOf: KeyLookup;
}

export interface RobustReduceResult {
  /** The step's gradient for this stage (f32). All zeros when no vector was usable. */
  grad: Float32Array;
  /** Whether any vector was combined (false: nothing to apply). */
  any: boolean;
  /** Digest of the vector from each rank (own included), null where none arrived or its signature failed. */
  digests: (string | null)[];
  /** The sender's signature of each digest (null where the digest is). */
  sigs: (string | null)[];
  /** Ranks excluded (refused at decode, missing, non-finite, norm outlier), ascending. */
  excluded: Exclusion[];
}

export async function robustReduce(o: RobustReduceInput): Promise<RobustReduceResult> {
  const { trust } = o;
  if (trust.aggregation === 'sum') throw new Error('robustReduce: the run aggregates by sum');
  const R = o.links.length;
  const n = o.grad.length;
  const own = new Float32Array(n);
  if (o.count > 0) for (let i = 0; i < n; i++) own[i] = o.grad[i] / o.count;
  const link = (j: number): Transport => {
    const t = o.links[j];
    if (!t) throw new LinkClosed(`robust reduce of step ${o.step}: no link to replica ${j} of stage ${o.stage}`);
    return t;
  };
  const waits = new Map<number, Promise<RobustArrival | null>>();
  for (let j = 0; j < R; j++) if (j !== o.rank) waits.set(j, RobustMailbox.of(link(j)).take(o.step, o.attempt, o.stage, j, o.timeoutMs));
  const slot = (rank: number) => ({ runId: o.runId, step: o.step, attempt: o.attempt, stage: o.stage, rank });
  const ownDigest = await digestVector(own);
  const ownSig = await o.signer.sign(robustSigningText(slot(o.rank), ownDigest));
  const meta = robustMeta({ step: o.step, attempt: o.attempt, stage: o.stage, rank: o.rank, count: o.count, n, digest: ownDigest, sig: ownSig });
  await Promise.all([...waits.keys()].map((j) => link(j).sendTensor({ kind: ROBUST_KIND, dtype: 'f32', shape: [n], data: own, meta })));
  const vectors: (Float32Array | null)[] = new Array<Float32Array | null>(R).fill(null);
  const digests: (string | null)[] = new Array<string | null>(R).fill(null);
  const sigs: (string | null)[] = new Array<string | null>(R).fill(null);
  const refused: Exclusion[] = [];
  digests[o.rank] = ownDigest;
  sigs[o.rank] = ownSig;
  if (o.count > 0) vectors[o.rank] = own;
  for (const [j, p] of waits) {
    const got = await p;
    if (!got) {
      refused.push({ rank: j, reason: 'missing' });
      continue;
    }
    // The digest of what came, signed by the link's peer for this slot: else refused, and nothing to report.
    const key = o.keyOf(link(j).peerId);
    const digest = got.bytes ? await digestBytes(got.bytes) : null;
    if (!key || digest === null || !(await verifySignature(key, robustSigningText(slot(j), digest), got.sig))) {
      refused.push({ rank: j, reason: got.ok ? 'bad signature' : got.reason });
      continue;
    }
    digests[j] = digest;
    sigs[j] = got.sig;
    if (!got.ok) refused.push({ rank: j, reason: got.reason });
    else if (got.vec.length !== n) refused.push({ rank: j, reason: `${got.vec.length} values, expected ${n}` });
    else if (got.count > 0) vectors[j] = got.vec;
  }
  const a = aggregate(vectors, n, {
    mode: trust.aggregation,
    normFactor: trust.normFactor,
    trim: trust.trim,
    clipTau: trust.clipTau,
    clipIters: trust.clipIters,
  });
  const grad = new Float32Array(n);
  for (let i = 0; i < n; i++) grad[i] = a.result[i] * o.M;
  const excluded = [...refused, ...a.excluded].sort((x, y) => x.rank - y.rank);
  return { grad, any: a.used.length > 0, digests, sigs, excluded };
}
