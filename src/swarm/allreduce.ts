// Butterfly all-reduce (reduce-scatter + all-gather) of a flat f32 vector across the R replicas of a stage, with
// every replica ending on a BITWISE-identical sum.
//
// Algorithm (hivemind / IOTA style), for the member of rank r in a group of size R and a vector of length n:
//   shard i = [floor(i*n/R), floor((i+1)*n/R))   (contiguous; lengths differ by at most 1; empty when n < R)
//   1. scatter: send shard j of the local vector to rank j, for every j != r.
//   2. reduce:  rank r owns shard r. Once it holds all R contributions it sums them in rank order 0..R-1,
//               accumulating in float64 and rounding once to float32 at the end. The order and the arithmetic are
//               fixed, so the result does not depend on arrival order (and is more accurate than f32 accumulation).
//   3. gather:  send the reduced shard r to every j != r; place the reduced shard j received from rank j.
// Every element of the result is computed by exactly one rank and copied byte for byte by the others, so all
// members agree bitwise. Each member sends and receives 2 * (R-1)/R * n floats in total.
//
// Messages are tensors of kind 'allreduce' with meta {tag, phase: 'scatter'|'gather', shard, from, size, n}. A
// per-transport demultiplexer (TensorDemux -> AllReduceMailbox) buffers them by tag, so messages that arrive before
// the local call starts are kept and concurrent reductions with different tags are kept apart.
//
// IMPORTANT (transport wiring): Transport.onTensor keeps early tensors only until the FIRST subscriber appears, and
// then hands the backlog to that subscriber alone. Attach the demultiplexer (src/net/tensor-demux.ts) as the transport's first (ideally only)
// tensor subscriber, synchronously when the transport is obtained:
//     const t = await net.connect(id);  attachSwarmTransport(t);     net.onConnection((t) => attachSwarmTransport(t));
// and route other kinds through it too (`TensorDemux.of(t).on('act', handler)`), which keeps early tensors per kind.
// allReduceSum attaches the mailbox itself if nobody did, which is fine in tests and when no other subscriber exists.

import type { Unsubscribe } from '../net/emitter';
import type { IncomingTensor } from '../net/tensor';
import type { CloseInfo, Transport } from '../net/transport';
import { TensorDemux } from '../net/tensor-demux';
import { allreduceMeta, readAllreduceMeta } from '../protocol/tensors';

export const ALLREDUCE_KIND = 'allreduce';
const DEFAULT_TIMEOUT_MS = 60_000;
/** Elements summed per block in the reduce step (bounds the float64 scratch buffer). */
const REDUCE_BLOCK = 1 << 16;

// ---------------------------------------------------------------------------------------------------------------
// All-reduce mailbox: one per transport, buffers 'allreduce' messages by tag.

type Listener = (x: IncomingTensor | Error) => void;

export interface AllReduceMailboxStats {
  /** Messages buffered for tags no local reduction has started yet. */
  buffered: number;
  /** Messages dropped: late arrivals for finished tags, or over the buffer limit. */
  dropped: number;
  /** Messages with unreadable meta. */
  malformed: number;
}

/**
 * Buffers incoming all-reduce messages of one transport by tag until the local reduction with that tag listens.
 * Get it with `AllReduceMailbox.of(t)` (idempotent; attaches through TensorDemux). Callers only need to create it
 * themselves to make sure it is attached before the first all-reduce message can arrive (see the header comment).
 */
export class AllReduceMailbox {
  private static readonly attached = new WeakMap<Transport, AllReduceMailbox>();
  /** Max buffered messages (for tags not started locally); a peer running far ahead or a flood is cut off here. */
  static maxBuffered = 1024;
  /** Finished tags remembered so late or duplicate messages for them are dropped instead of buffered forever. */
  static maxFinishedTags = 4096;

  static of(t: Transport): AllReduceMailbox {
    let m = AllReduceMailbox.attached.get(t);
    if (!m) {
      m = new AllReduceMailbox(t);
      AllReduceMailbox.attached.set(t, m);
    }
    return m;
  }

  private readonly buffer = new Map<string, IncomingTensor[]>();
  private bufferedCount = 0;
  private readonly listeners = new Map<string, Listener>();
  private readonly finished = new Set<string>();
  private readonly counters = { dropped: 0, malformed: 0 };

  private constructor(readonly transport: Transport) {
    TensorDemux.of(transport).on(ALLREDUCE_KIND, (x) => this.accept(x));
    transport.onClose(() => {
      this.buffer.clear();
      this.bufferedCount = 0;
    });
  }

  stats(): AllReduceMailboxStats {
    return { buffered: this.bufferedCount, ...this.counters };
  }

  /** Registers the single listener of `tag` and hands it what was buffered. Throws if the tag is busy or used. */
  listen(tag: string, listener: Listener): Unsubscribe {
    if (this.listeners.has(tag)) throw new Error(`an all-reduce with tag "${tag}" is already running on this link`);
    if (this.finished.has(tag)) {
      throw new Error(`all-reduce tag "${tag}" was already used on this link; use a fresh tag for every attempt`);
    }
    this.listeners.set(tag, listener);
    const early = this.buffer.get(tag);
    if (early) {
      this.buffer.delete(tag);
      this.bufferedCount -= early.length;
      for (const x of early) listener(x);
    }
    return () => {
      if (this.listeners.get(tag) === listener) this.listeners.delete(tag);
    };
  }

  /** Marks `tag` done: its listener goes away and later messages with this tag are dropped. */
  finish(tag: string): void {
    this.listeners.delete(tag);
    const early = this.buffer.get(tag);
    if (early) {
      this.buffer.delete(tag);
      this.bufferedCount -= early.length;
    }
    this.finished.add(tag);
    if (this.finished.size > AllReduceMailbox.maxFinishedTags) {
      const oldest = this.finished.values().next().value as string;
      this.finished.delete(oldest);
    }
  }

  private accept(x: IncomingTensor): void {
    const tag = x.meta.tag;
    if (typeof tag !== 'string' || tag.length === 0) {
      this.counters.malformed++;
      const err = new Error(`malformed all-reduce message from peer ${this.transport.peerId}: meta has no tag`);
      for (const l of [...this.listeners.values()]) l(err);
      return;
    }
    const l = this.listeners.get(tag);
    if (l) {
      l(x);
      return;
    }
    if (this.finished.has(tag) || this.bufferedCount >= AllReduceMailbox.maxBuffered) {
      this.counters.dropped++;
      return;
    }
    let list = this.buffer.get(tag);
    if (!list) {
      list = [];
      this.buffer.set(tag, list);
    }
    list.push(x);
    this.bufferedCount++;
  }
}

/**
 * Attaches the swarm's per-transport demultiplexer and the all-reduce mailbox. Call it synchronously as soon as a
 * transport is obtained (after `net.connect`, inside `net.onConnection`), before anything else subscribes.
 */
export function attachSwarmTransport(t: Transport): TensorDemux {
  const d = TensorDemux.of(t);
  AllReduceMailbox.of(t);
  return d;
}

// ---------------------------------------------------------------------------------------------------------------
// The reduction.

export interface ReduceGroup {
  rank: number;
  size: number;
  /** transports to the other members by rank (undefined at own rank) */
  links: (Transport | undefined)[];
}

export interface AllReduceOptions {
  /** Whole-reduction deadline, ms (default 60 000). */
  timeoutMs?: number;
}

export class AllReduceError extends Error {
  override name = 'AllReduceError';
  constructor(
    message: string,
    readonly tag: string,
    /** The member blamed (closed link, malformed message, missing at timeout: the first such rank), if any. */
    readonly rank: number | undefined,
    readonly peerId: string | undefined,
    /** Every rank still owing a message at the time of failure. */
    readonly pendingRanks: number[] = [],
  ) {
    super(message);
  }
}

/** Shard i of a length-n vector split across R members: [lo, hi). */
export function shardBounds(n: number, size: number, i: number): [number, number] {
  return [Math.floor((i * n) / size), Math.floor(((i + 1) * n) / size)];
}

/**
 * The fixed-order reduction used for a shard: sum of `parts[0] + parts[1] + ... + parts[R-1]` per element,
 * accumulated in float64 in that order and rounded once to float32. Exported so tests and the single-peer
 * reference can reproduce the exact bits.
 */
export function reduceInOrder(parts: Float32Array[], len: number): Float32Array {
  const out = new Float32Array(len);
  const acc = new Float64Array(Math.min(len, REDUCE_BLOCK));
  for (let start = 0; start < len; start += REDUCE_BLOCK) {
    const end = Math.min(len, start + REDUCE_BLOCK);
    const m = end - start;
    const p0 = parts[0];
    for (let i = 0; i < m; i++) acc[i] = p0[start + i];
    for (let k = 1; k < parts.length; k++) {
      const p = parts[k];
      for (let i = 0; i < m; i++) acc[i] += p[start + i];
    }
    for (let i = 0; i < m; i++) out[start + i] = acc[i]; // Float32Array store = round to nearest f32
  }
  return out;
}

/** Divides every element by `count` in place (e.g. sum -> mean). Same input bits give the same output bits. */
export function averageInPlace(data: Float32Array, count: number): Float32Array {
  if (!(count > 0)) throw new Error(`averageInPlace: count must be > 0, got ${count}`);
  // Division, not multiplication by 1/count: the correctly rounded quotient, the same on every replica.
  if (count === 1) return data;
  for (let i = 0; i < data.length; i++) data[i] = data[i] / count;
  return data;
}

function validateGroup(group: ReduceGroup): void {
  const { rank, size, links } = group;
  if (!Number.isInteger(size) || size < 1) throw new Error(`allReduceSum: group size must be an integer >= 1, got ${size}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) {
    throw new Error(`allReduceSum: rank ${rank} is outside the group of size ${size}`);
  }
  if (links.length !== size) throw new Error(`allReduceSum: ${links.length} links for a group of size ${size}`);
  for (let j = 0; j < size; j++) {
    if (j === rank) {
      if (links[j] !== undefined) throw new Error(`allReduceSum: links[${j}] must be undefined (own rank)`);
    } else if (!links[j]) throw new Error(`allReduceSum: no link to rank ${j}`);
  }
  const seen = new Set<Transport>();
  for (const t of links) {
    if (!t) continue;
    if (seen.has(t)) throw new Error(`allReduceSum: the same transport (peer ${t.peerId}) is given for two ranks`);
    seen.add(t);
  }
}

/**
 * Sums `data` over the group; resolves with the sum (a new array, every member bitwise equal). `tag` (e.g.
 * `step:12`) keeps concurrent reductions apart and must be unique per attempt (a retry after a failure needs a new
 * tag, e.g. `step:12:try2`, so late messages of the failed attempt cannot be mixed in). Rejects with an
 * AllReduceError naming the peer/rank if a member's link closes, a member sends a malformed shard, or the timeout
 * passes, so the caller can re-form the group. `data` must not be modified until the promise settles.
 */
export async function allReduceSum(group: ReduceGroup, data: Float32Array, tag: string, opts: AllReduceOptions = {}): Promise<Float32Array> {
  validateGroup(group);
  if (!(data instanceof Float32Array)) throw new Error('allReduceSum: data must be a Float32Array');
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > 200) {
    throw new Error('allReduceSum: tag must be a non-empty string of at most 200 characters');
  }
  const { rank: r, size: R, links } = group;
  const n = data.length;
  if (R === 1) return data.slice();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  /** The link to rank j (validateGroup checked that every other rank has one). */
  const link = (j: number): Transport => {
    const t = links[j];
    if (!t) throw new Error(`allReduceSum: no link to rank ${j}`);
    return t;
  };
  const who = (j: number) => `rank ${j} (peer ${link(j).peerId})`;
  const prefix = `all-reduce "${tag}" (rank ${r} of ${R})`;

  return new Promise<Float32Array>((resolve, reject) => {
    const out = new Float32Array(n);
    const [myLo, myHi] = shardBounds(n, R, r);
    const contrib: (Float32Array | undefined)[] = new Array<Float32Array | undefined>(R);
    contrib[r] = data.subarray(myLo, myHi);
    const gathered = new Array<boolean>(R).fill(false);
    gathered[r] = true;
    const sendsPending = new Array<number>(R).fill(0);
    let scatterLeft = R - 1;
    let gatherLeft = R - 1;
    let reduced = false;
    let done = false;
    const cleanups: (() => void)[] = [];
    const mailboxes: AllReduceMailbox[] = [];

    const owing = (): number[] => {
      const ranks: number[] = [];
      for (let j = 0; j < R; j++) if (j !== r && (!contrib[j] || !gathered[j] || sendsPending[j] > 0)) ranks.push(j);
      return ranks;
    };
    const finish = () => {
      done = true;
      for (const c of cleanups) c();
      for (const m of mailboxes) m.finish(tag);
    };
    const fail = (detail: string, blamed?: number) => {
      if (done) return;
      const pending = owing();
      finish();
      reject(new AllReduceError(`${prefix}: ${detail}`, tag, blamed, blamed === undefined ? undefined : link(blamed).peerId, pending));
    };
    const maybeDone = () => {
      if (done || !reduced || gatherLeft > 0) return;
      for (let j = 0; j < R; j++) if (sendsPending[j] > 0) return;
      finish();
      resolve(out);
    };
    const send = (j: number, phase: 'scatter' | 'gather', shard: number, payload: Float32Array) => {
      sendsPending[j]++;
      link(j)
        .sendTensor({
          kind: ALLREDUCE_KIND,
          dtype: 'f32',
          shape: [payload.length],
          data: payload,
          meta: allreduceMeta({ tag, phase, shard, from: r, size: R, n }),
        })
        .then(
          () => {
            sendsPending[j]--;
            maybeDone();
          },
          (err: unknown) => fail(`sending ${phase} to ${who(j)} failed: ${err instanceof Error ? err.message : String(err)}`, j),
        );
    };
    const reduce = () => {
      const parts: Float32Array[] = [];
      for (let k = 0; k < R; k++) {
        const c = contrib[k];
        if (!c) return fail(`reduce before the shard of ${who(k)} arrived`, k);
        parts.push(c);
      }
      const mine = reduceInOrder(parts, myHi - myLo);
      out.set(mine, myLo);
      reduced = true;
      for (let k = 0; k < R; k++) contrib[k] = k === r ? contrib[k] : new Float32Array(0); // free received shards
      for (let j = 0; j < R; j++) if (j !== r) send(j, 'gather', r, mine);
      maybeDone();
    };

    const receive = (j: number, x: IncomingTensor | Error) => {
      if (done) return;
      if (x instanceof Error) return fail(x.message, j);
      const bad = (why: string) => fail(`malformed message from ${who(j)}: ${why}`, j);
      if (x.kind !== ALLREDUCE_KIND) return bad(`kind ${x.kind}`);
      const read = readAllreduceMeta(x.meta);
      if (!read.ok) return bad(read.error);
      const m = read.value;
      const phase = m.phase;
      if (m.from !== j) return bad(`claims to be from rank ${m.from}`);
      if (m.size !== R) return bad(`group size ${m.size}, expected ${R}`);
      if (m.n !== n) return bad(`vector length ${m.n}, expected ${n}`);
      if (x.dtype !== 'f32') return bad(`dtype ${x.dtype}, expected f32`);
      const shard = phase === 'scatter' ? r : j;
      if (m.shard !== shard) return bad(`${phase} of shard ${m.shard}, expected shard ${shard}`);
      const [lo, hi] = shardBounds(n, R, shard);
      const len = hi - lo;
      if (x.shape.length !== 1 || x.shape[0] !== len || x.bytes.byteLength !== len * 4) {
        return bad(`${phase} shard ${shard} has shape [${x.shape.join(',')}] (${x.bytes.byteLength} bytes), expected [${len}]`);
      }
      const b = x.bytes;
      const view = b.byteOffset % 4 === 0 ? new Float32Array(b.buffer, b.byteOffset, len) : new Float32Array(b.slice().buffer);
      if (phase === 'scatter') {
        if (contrib[j]) return bad('duplicate scatter message');
        contrib[j] = view;
        if (--scatterLeft === 0) reduce();
      } else {
        if (gathered[j]) return bad('duplicate gather message');
        gathered[j] = true;
        out.set(view, lo);
        gatherLeft--;
        maybeDone();
      }
    };

    // Listen first (buffered early messages are held in `early` until everything is set up), then watch the
    // links, then send, then process what had arrived early.
    let early: [number, IncomingTensor | Error][] | null = [];
    try {
      for (let j = 0; j < R; j++) {
        if (j === r) continue;
        const mb = AllReduceMailbox.of(link(j));
        cleanups.push(mb.listen(tag, (x) => (early ? early.push([j, x]) : receive(j, x))));
        mailboxes.push(mb);
      }
    } catch (err) {
      for (const c of cleanups) c();
      reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    for (let j = 0; j < R && !done; j++) {
      if (j === r) continue;
      const t = link(j);
      const onClose = (info: CloseInfo) => {
        if (!contrib[j] || !gathered[j] || sendsPending[j] > 0) {
          fail(`link to ${who(j)} closed (${info.reason}: ${info.detail})`, j);
        }
      };
      if (!t.isOpen) {
        onClose(t.closeInfo ?? { reason: 'channel', detail: 'not open' });
        return;
      }
      cleanups.push(t.onClose(onClose));
    }
    if (done) return;
    const timer = setTimeout(() => {
      // Blame the earliest missing phase: members whose scatter never came hold everyone else up.
      const ranks = (pred: (j: number) => boolean) => [...Array(R).keys()].filter((j) => j !== r && pred(j));
      let culprits = ranks((j) => !contrib[j]);
      let what = 'scatter';
      if (culprits.length === 0) [culprits, what] = [ranks((j) => !gathered[j]), 'gather'];
      if (culprits.length === 0) [culprits, what] = [ranks((j) => sendsPending[j] > 0), 'sends to'];
      fail(`timed out after ${timeoutMs} ms waiting for ${culprits.map(who).join(', ')} (${what})`, culprits[0]);
    }, timeoutMs);
    cleanups.push(() => clearTimeout(timer));

    // Scatter, starting with the next rank so that not every member sends to rank 0 first.
    for (let s = 1; s < R && !done; s++) {
      const j = (r + s) % R;
      const [lo, hi] = shardBounds(n, R, j);
      send(j, 'scatter', j, data.subarray(lo, hi));
    }
    const backlog = early;
    early = null;
    for (const [j, x] of backlog) receive(j, x);
  });
}
