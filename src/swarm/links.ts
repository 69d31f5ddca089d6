// The peer-to-peer links of one swarm peer: one Transport per neighbour, keyed by peer id. Every transport gets the
// swarm's tensor demultiplexer attached synchronously (src/swarm/allreduce.ts: attachSwarmTransport) and the
// pipeline kinds are routed to one handler. One dialer per pair: the member earlier in the (stage, rank) order dials.
import type { Unsubscribe } from '../net/emitter';
import type { IncomingTensor } from '../net/tensor';
import type { CloseInfo, Transport } from '../net/transport';
import { attachSwarmTransport } from './allreduce';
import { attachStateMailbox } from './state-transfer';

/**
 * Tensor kinds of the pipeline, and a validator's uploads ('vinput', src/protocol/validation-tensors.ts), which the
 * runtime hands its validator (the all-reduce and state transfer use their own kinds on the same links).
 */
export const PIPELINE_KINDS = ['act', 'grad', 'tie', 'vinput'] as const;

/** Custody keeper -> source: "send me your checkpoint of meta.stage at meta.step" (u8 [0]; src/swarm/peer-checkpoints.ts). */
export const CUSTODY_PULL_KIND = 'custody-pull';

export interface Dialer {
  connect(peerId: string): Promise<Transport>;
  onConnection(handler: (t: Transport) => void): Unsubscribe;
}

/** A wait for a link that will never come (its peer left the room or the membership): nobody's fault here. */
export class LinkAbandonedError extends Error {}

export class Links {
  private readonly map = new Map<string, Transport>();
  /** Incoming links awaited, by peer: each waiter is settled by the link, a timeout or abandon(). */
  private readonly waiters = new Map<string, Set<{ resolve: (t: Transport) => void; reject: (e: Error) => void }>>();
  private readonly offs: Unsubscribe[] = [];
  private closed = false;

  constructor(
    private readonly net: Dialer,
    private readonly onTensor: (from: string, x: IncomingTensor) => void,
    private readonly onLost: (peerId: string, info: CloseInfo) => void = () => undefined,
    /** Whether a tensor of `kind` from `from` is delivered at all (src/swarm/tensor-policy.ts); default: all. */
    private readonly admit: (from: string, kind: string) => boolean = () => true,
  ) {
    this.offs.push(net.onConnection((t) => this.adopt(t)));
  }

  /** An open link to `peerId`, if any. */
  get(peerId: string): Transport | undefined {
    const t = this.map.get(peerId);
    return t && t.isOpen ? t : undefined;
  }

  get peers(): string[] {
    return [...this.map.keys()].filter((p) => this.get(p));
  }

  private adopt(t: Transport): void {
    if (this.closed) {
      t.close();
      return;
    }
    const demux = attachSwarmTransport(t); // first subscriber, synchronously: no early tensor is lost
    demux.setGate((x) => this.admit(t.peerId, x.kind));
    attachStateMailbox(t);
    for (const kind of [...PIPELINE_KINDS, CUSTODY_PULL_KIND]) demux.on(kind, (x) => this.onTensor(t.peerId, x));
    const old = this.map.get(t.peerId);
    this.map.set(t.peerId, t);
    if (old && old !== t && old.isOpen) old.close();
    t.onClose((info) => {
      if (this.map.get(t.peerId) === t) {
        this.map.delete(t.peerId);
        if (!this.closed) this.onLost(t.peerId, info);
      }
    });
    const ws = this.waiters.get(t.peerId);
    if (ws) for (const w of [...ws]) w.resolve(t);
  }

  /** Resolves with an open link to `peerId`, dialing it when `dial`, else waiting for its incoming link. */
  async link(peerId: string, dial: boolean, timeoutMs: number): Promise<Transport> {
    const have = this.get(peerId);
    if (have) return have;
    if (dial) {
      const t = await this.net.connect(peerId);
      this.adopt(t);
      return t;
    }
    return new Promise<Transport>((resolve, reject) => {
      let set = this.waiters.get(peerId);
      if (!set) this.waiters.set(peerId, (set = new Set()));
      const s = set;
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        s.delete(w);
        if (s.size === 0 && this.waiters.get(peerId) === s) this.waiters.delete(peerId);
        fn();
      };
      const w = { resolve: (t: Transport) => settle(() => resolve(t)), reject: (e: Error) => settle(() => reject(e)) };
      const timer = setTimeout(() => w.reject(new Error(`no incoming link from ${peerId} within ${timeoutMs} ms`)), timeoutMs);
      s.add(w);
    });
  }

  /**
   * Fails the waits for incoming links from peers `keep` rejects, with `why` (a member that left the membership or
   * the room will never dial: its wait must not hold up the next epoch for a whole link timeout).
   */
  abandon(keep: (peerId: string) => boolean, why: string): void {
    for (const [peer, ws] of [...this.waiters]) {
      if (keep(peer)) continue;
      for (const w of [...ws]) w.reject(new LinkAbandonedError(`no incoming link from ${peer}: ${why}`));
    }
  }

  /** Closes the links to peers `keep` rejects (members that left the membership) and fails the waits for theirs. */
  closeOthers(keep: (peerId: string) => boolean, why: string): void {
    for (const [peer, t] of [...this.map]) if (!keep(peer)) t.close();
    this.abandon(keep, why);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abandon(() => false, 'the links are closed');
    for (const off of this.offs) off();
    for (const t of this.map.values()) t.close();
    this.map.clear();
  }
}

/** Who dials whom: the member earlier in (stage, rank) order dials the later one. */
export function dialsFirst(stages: readonly (readonly string[])[], a: string, b: string): boolean {
  const pos = (p: string): [number, number] => {
    for (let s = 0; s < stages.length; s++) {
      const r = stages[s].indexOf(p);
      if (r >= 0) return [s, r];
    }
    throw new Error(`${p} is not a member`);
  };
  const [sa, ra] = pos(a);
  const [sb, rb] = pos(b);
  return sa < sb || (sa === sb && ra < rb);
}

/**
 * The peers a member of stage `s` needs links to: neighbours' replicas, its own replicas, the tied-wte partner stage,
 * and for a state copy (`joins`) its source or joiner, which may be of another stage (a checkpoint's holder).
 */
export function neededPeers(
  stages: readonly (readonly string[])[],
  self: string,
  s: number,
  joins: readonly { peer: string; source: string }[] = [],
): string[] {
  const S = stages.length;
  const want = new Set<string>();
  const add = (i: number) => {
    if (i >= 0 && i < S) for (const p of stages[i]) if (p !== self) want.add(p);
  };
  add(s - 1);
  add(s);
  add(s + 1);
  if (S > 1 && s === 0) add(S - 1);
  if (S > 1 && s === S - 1) add(0);
  const member = (p: string) => stages.some((m) => m.includes(p));
  for (const j of joins) {
    if (j.peer === self && j.source !== self && member(j.source)) want.add(j.source);
    if (j.source === self && j.peer !== self && member(j.peer)) want.add(j.peer);
  }
  return [...want];
}
