// Messages a SignalingClient could not send yet: while it is disconnected, or addressed to a member that has not
// rejoined the restarted server yet (the server would refuse them as 'unknown-peer' and count a strike). One queue in
// send order; each entry names the one member it is for, so a member's messages leave in order once it is back,
// without waiting for the others. Bounded in count and bytes: beyond that the sender gets an error, nothing is
// silently dropped (except the messages of a member that never came back, see dropFor).

export interface OutboxEntry {
  /** The member this message is for. */
  to: string;
  /** The message's wire text. */
  text: string;
  bytes: number;
  /** Counted as control (WIRE_CONTROL) or link traffic when it finally leaves. */
  control: boolean;
}

export class SignalingOutbox {
  private entries: OutboxEntry[] = [];
  private totalBytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Why `entries` do not fit (null: they do). All or none of them are queued. */
  refusal(entries: readonly OutboxEntry[]): string | null {
    const bytes = entries.reduce((n, e) => n + e.bytes, 0);
    if (this.entries.length + entries.length > this.maxEntries)
      return `${this.entries.length} messages already wait for the signaling connection (at most ${this.maxEntries})`;
    if (this.totalBytes + bytes > this.maxBytes)
      return `${this.totalBytes} bytes already wait for the signaling connection (at most ${this.maxBytes})`;
    return null;
  }

  /** Queues `entries` (check refusal() first); returns false, queueing nothing, if they do not fit. */
  push(entries: readonly OutboxEntry[]): boolean {
    if (this.refusal(entries) !== null) return false;
    for (const e of entries) {
      this.entries.push(e);
      this.totalBytes += e.bytes;
    }
    return true;
  }

  /** The members something waits for. */
  addressees(): string[] {
    return [...new Set(this.entries.map((e) => e.to))];
  }

  /** Queues `entries` ahead of everything queued (messages to send again first); false, queueing nothing, if they do not fit. */
  unshift(entries: readonly OutboxEntry[]): boolean {
    if (this.refusal(entries) !== null) return false;
    this.entries = [...entries, ...this.entries];
    for (const e of entries) this.totalBytes += e.bytes;
    return true;
  }

  has(to: string): boolean {
    return this.entries.some((e) => e.to === to);
  }

  /**
   * Removes and returns, in queue order, up to `limit` entries whose member `ready` says can be sent to now. A member's
   * entries stay in order: once one of them is kept, every later one for that member is kept too.
   */
  take(ready: (to: string) => boolean, limit: number): OutboxEntry[] {
    const out: OutboxEntry[] = [];
    const kept: OutboxEntry[] = [];
    const blocked = new Set<string>();
    for (const e of this.entries) {
      if (out.length < limit && !blocked.has(e.to) && ready(e.to)) out.push(e);
      else {
        blocked.add(e.to);
        kept.push(e);
      }
    }
    this.entries = kept;
    for (const e of out) this.totalBytes -= e.bytes;
    return out;
  }

  /** Forgets every message for `to` (a member that did not come back); returns how many. */
  dropFor(to: string): number {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => {
      if (e.to !== to) return true;
      this.totalBytes -= e.bytes;
      return false;
    });
    return before - this.entries.length;
  }

  clear(): void {
    this.entries = [];
    this.totalBytes = 0;
  }
}
