// Frozen peers (docs/resilience.md, "Stragglers and frozen peers"). A peer whose process is stopped (SIGSTOP, a
// suspended laptop, a tab the browser froze) keeps its WebSocket open for up to the signaling keepalive (15-30 s)
// while its microbatches never come back. The coordinator watches each step attempt's microbatch phase against a
// deadline (deadlines.ts); when it passes, every member of the attempt gets a `ping`, and a member that does not
// `pong` within pingTimeoutMs is frozen: the coordinator drops it like a vanished peer (not a strike: freezing is
// not cheating) and the step re-runs without it. A round everyone answers doubles the deadline (they are slow, not
// gone). A `link-down` from a member pings the peer it names at once. A frozen peer that is heard from again (any
// message) comes back as a joiner: the coordinator assigns it its stage again and it copies the state from a live
// replica at the next membership (its own state may be stale). The control handler of a peer runs on its event
// loop while the GPU work is asynchronous, so a busy peer answers at once; only a stopped one stays silent.
import type { ControlMessage } from '../protocol/messages';

/** What Liveness needs of the coordinator. */
export interface LivenessHost {
  send(msg: ControlMessage, to: string): void;
  isAlive(peerId: string): boolean;
  /** Why `peerId` must not be dropped even if silent (e.g. its stage's last live replica: nobody could take over), or null. */
  keep(peerId: string): string | null;
  /** Drop a silent peer from the membership, as if it had vanished. */
  freeze(peerId: string, reason: string): void;
  /** A frozen peer was heard from again: back as a joiner of its stage. */
  revive(peerId: string): void;
  log(s: string): void;
}

export interface LivenessOptions {
  /** A pinged peer that does not answer within this is frozen (default 2000). */
  pingTimeoutMs?: number;
  now?: () => number;
}

export const DEFAULT_PING_TIMEOUT_MS = 2000;

/**
 * A round whose timer fires this late (ms) was held up here (a blocked event loop: a synchronous GPU pipeline build
 * of an in-process peer, a loaded machine): the pongs may sit unread in the socket. It gets another ping timeout,
 * at most MAX_GRACES times, rather than freezing peers that did answer.
 */
const LATE_MS = 250;
const MAX_GRACES = 3;

interface Round {
  waiting: Set<string>;
  timer: ReturnType<typeof setTimeout>;
  /** When the ping timeout ends (this process's clock). */
  due: number;
  /** Times the round was extended because this process itself was late. */
  graces: number;
  why: string;
  done: (silent: string[]) => void;
}

interface Watch {
  members: string[];
  startedAt: number;
  deadlineMs: number;
  timer: ReturnType<typeof setTimeout> | null;
}

export class Liveness {
  private readonly pingTimeoutMs: number;
  private readonly now: () => number;
  private nonce = 0;
  private readonly rounds = new Map<number, Round>();
  private watchState: Watch | null = null;
  private readonly frozenPeers = new Set<string>();
  private closed = false;

  constructor(
    private readonly host: LivenessHost,
    opts: LivenessOptions = {},
  ) {
    this.pingTimeoutMs = opts.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Peers frozen and not heard from since. */
  get frozen(): ReadonlySet<string> {
    return this.frozenPeers;
  }

  /**
   * Watches an attempt's phase: if `unwatch()` has not been called within `deadlineMs`, pings `members`. A round
   * everyone alive answers doubles the deadline (from the watch's start) and watches on. Replaces any earlier watch.
   */
  watch(members: readonly string[], deadlineMs: number): void {
    this.unwatch();
    if (this.closed) return;
    const w: Watch = { members: [...members], startedAt: this.now(), deadlineMs, timer: null };
    this.watchState = w;
    this.arm(w);
  }

  /** The watched phase is over (its microbatches are in, or the attempt ended). */
  unwatch(): void {
    const w = this.watchState;
    if (w?.timer) clearTimeout(w.timer);
    this.watchState = null;
  }

  private arm(w: Watch): void {
    const delay = Math.max(0, w.startedAt + w.deadlineMs - this.now());
    w.timer = setTimeout(() => {
      w.timer = null;
      if (this.watchState !== w) return;
      const late = w.members.filter((p) => this.host.isAlive(p));
      this.ping(late, `the attempt's microbatches are not all in after ${Math.round(w.deadlineMs)} ms`, (silent) => {
        if (this.watchState !== w || silent.length > 0) return; // a freeze restarts the attempt: a new watch
        w.deadlineMs *= 2;
        this.host.log(`every member answered: deadline extended to ${Math.round(w.deadlineMs)} ms`);
        this.arm(w);
      });
    }, delay);
  }

  /** A member says its link to `peer` closed: ping `peer` at once. */
  linkDown(from: string, peer: string, reason: string): void {
    if (this.closed || !this.host.isAlive(peer) || this.pinging(peer)) return;
    this.ping([peer], `${from} lost its link to it (${reason})`, () => undefined);
  }

  private pinging(peer: string): boolean {
    for (const r of this.rounds.values()) if (r.waiting.has(peer)) return true;
    return false;
  }

  /** Pings `peers`; after the ping timeout, freezes the silent ones (unless the host keeps them) and calls `done`. */
  private ping(peers: readonly string[], why: string, done: (silent: string[]) => void): void {
    if (peers.length === 0) return done([]);
    const nonce = ++this.nonce;
    const round: Round = {
      waiting: new Set(peers),
      why,
      done,
      due: this.now() + this.pingTimeoutMs,
      graces: 0,
      timer: setTimeout(() => this.endRound(nonce), this.pingTimeoutMs),
    };
    this.rounds.set(nonce, round);
    this.host.log(`pinging ${peers.join(', ')}: ${why}`);
    for (const p of peers) this.host.send({ type: 'ping', nonce }, p);
  }

  private endRound(nonce: number): void {
    const r = this.rounds.get(nonce);
    if (!r) return;
    const late = this.now() - r.due;
    if (late > Math.min(LATE_MS, this.pingTimeoutMs / 4) && r.graces < MAX_GRACES) {
      r.graces++;
      r.due = this.now() + this.pingTimeoutMs;
      this.host.log(`ping round ${nonce} ended ${Math.round(late)} ms late here: ${this.pingTimeoutMs} ms more for the answers`);
      r.timer = setTimeout(() => this.endRound(nonce), this.pingTimeoutMs);
      return;
    }
    this.rounds.delete(nonce);
    const silent: string[] = [];
    for (const p of r.waiting) {
      if (!this.host.isAlive(p)) continue; // gone meanwhile (peer-left): nothing to freeze
      const keep = this.host.keep(p);
      if (keep) {
        this.host.log(`${p} did not answer a ping within ${this.pingTimeoutMs} ms but stays: ${keep}`);
        continue;
      }
      silent.push(p);
      this.frozenPeers.add(p);
      this.host.freeze(p, `no pong within ${this.pingTimeoutMs} ms (${r.why})`);
    }
    r.done(silent);
  }

  /**
   * Every message the coordinator receives, before anything else looks at it: a pong ends its sender's wait, and a
   * frozen peer's message (whatever it is) brings it back. Returns true when the message was a pong (nothing more
   * to do with it).
   */
  heard(from: string, msg: ControlMessage): boolean {
    if (this.closed) return msg.type === 'pong';
    if (this.frozenPeers.delete(from)) {
      this.host.log(`${from} answers again (${msg.type}) after it was frozen: it rejoins its stage`);
      this.host.revive(from);
    }
    if (msg.type !== 'pong') return false;
    const r = this.rounds.get(msg.nonce);
    if (r?.waiting.delete(from) && r.waiting.size === 0) {
      clearTimeout(r.timer);
      this.rounds.delete(msg.nonce);
      r.done([]);
    }
    return true;
  }

  /** A peer that left the room (peer-left) is no longer frozen: nothing from it can bring it back. */
  forget(peerId: string): void {
    this.frozenPeers.delete(peerId);
  }

  close(): void {
    this.closed = true;
    this.unwatch();
    for (const r of this.rounds.values()) clearTimeout(r.timer);
    this.rounds.clear();
  }
}
