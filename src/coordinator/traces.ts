// The coordinator's view of one step attempt's traces (docs/trust.md "Validators"): every member's `step-trace`
// (parts merged), whether neighbours agree on what crossed each boundary, each microbatch's route, the loss of the
// route's last-stage peer, and the work each member did. Pure: src/coordinator/validation.ts and coordinator.ts use it.
import type { ControlOf } from '../protocol/messages';

type Entry = [number, string, string];
/** A received entry: [mb, sender, digest, the sender's signature of the digest]. */
type RecvEntry = [number, string, string, string];

export interface MemberTrace {
  peerId: string;
  stage: number;
  backward: number[];
  sent: Entry[];
  recv: RecvEntry[];
  contrib?: string;
  losses: Map<number, number | null>;
}

interface PartialTrace {
  parts: number;
  got: Map<number, ControlOf<'step-trace'>>;
}

/** A boundary whose two sides disagree: what `sender` says it sent `receiver` is not what `receiver` says it got. */
export interface Disagreement {
  mb: number;
  sender: string;
  receiver: string;
  /** Activations (to a later stage) or gradients (to an earlier one). */
  kind: 'act' | 'grad';
  /** Digests each side names (null: that side has no entry for it). */
  sent: string | null;
  received: string | null;
  /** The sender's signature of `received`, as the receiver reports it (null with `received`). */
  receivedSig: string | null;
}

export class TraceBook {
  private readonly partial = new Map<string, PartialTrace>();
  readonly traces = new Map<string, MemberTrace>();

  constructor(
    readonly step: number,
    readonly attempt: number,
    readonly members: string[][],
  ) {}

  /** A trace (part) from `from`: accepted only from a member of the stage it names, for this attempt. */
  add(from: string, msg: ControlOf<'step-trace'>): string | null {
    if (msg.step !== this.step || msg.attempt !== this.attempt) return 'not this attempt';
    if (!this.members[msg.stage]?.includes(from)) return `${from} is not a member of stage ${msg.stage}`;
    if (this.traces.has(from)) return 'a second trace';
    let p = this.partial.get(from);
    if (!p) this.partial.set(from, (p = { parts: msg.parts, got: new Map() }));
    if (p.parts !== msg.parts || msg.part >= msg.parts || p.got.has(msg.part)) return 'inconsistent parts';
    p.got.set(msg.part, msg);
    if (p.got.size < p.parts) return null;
    this.partial.delete(from);
    const ordered = [...p.got.values()].sort((a, b) => a.part - b.part);
    this.traces.set(from, {
      peerId: from,
      stage: msg.stage,
      backward: ordered.flatMap((m) => m.backward),
      sent: ordered.flatMap((m) => m.sent),
      recv: ordered.flatMap((m) => m.recv),
      contrib: ordered[0].contrib,
      losses: new Map(ordered.flatMap((m) => m.losses ?? [])),
    });
    return null;
  }

  /** Every member in `alive` has sent its whole trace. */
  complete(alive: (p: string) => boolean): boolean {
    return this.members.every((m) => m.every((p) => !alive(p) || this.traces.has(p)));
  }

  /**
   * Neighbours' digests: every entry a sender lists as sent must be in its receiver's received list with the same
   * digest, and the other way round. Entries naming a non-neighbour count as disagreements too.
   */
  disagreements(): Disagreement[] {
    const out: Disagreement[] = [];
    const key = (mb: number, from: string, to: string) => `${mb}|${from}|${to}`;
    const sent = new Map<string, string>();
    const recv = new Map<string, { d: string; sig: string }>();
    for (const t of this.traces.values()) {
      for (const [mb, to, d] of t.sent) sent.set(key(mb, t.peerId, to), d);
      for (const [mb, from, d, sig] of t.recv) recv.set(key(mb, from, t.peerId), { d, sig });
    }
    const kind = (from: string, to: string): 'act' | 'grad' => (this.stageOf(from) < this.stageOf(to) ? 'act' : 'grad');
    for (const [k, d] of sent) {
      const [mb, from, to] = k.split('|');
      // A receiver with no trace (it vanished): the step re-runs anyway.
      if (!this.traces.has(to)) continue;
      const r = recv.get(k);
      if (r?.d !== d)
        out.push({ mb: Number(mb), sender: from, receiver: to, kind: kind(from, to), sent: d, received: r?.d ?? null, receivedSig: r?.sig ?? null });
    }
    for (const [k, r] of recv) {
      if (sent.has(k)) continue;
      const [mb, from, to] = k.split('|');
      if (!this.traces.has(from)) continue;
      out.push({ mb: Number(mb), sender: from, receiver: to, kind: kind(from, to), sent: null, received: r.d, receivedSig: r.sig });
    }
    return out;
  }

  /** A member's stage (-1: not a member of this attempt). */
  stageOf(peer: string): number {
    return this.members.findIndex((m) => m.includes(peer));
  }

  /** Microbatch `mb`'s route, stage by stage (first-stage owner ... last-stage peer), from the activations sent. */
  route(mb: number, owner: string): string[] {
    const route = [owner];
    for (let s = 1; s < this.members.length; s++) {
      const prev = this.traces.get(route[s - 1]);
      const next = prev?.sent.find(([m, to]) => m === mb && this.members[s].includes(to));
      if (!next) break;
      route.push(next[1]);
    }
    return route;
  }

  /**
   * The loss of each microbatch as the last-stage peer on its route reports it in its trace (null: no route to the
   * last stage, or no loss there).
   */
  routeLosses(owners: string[]): Map<number, number | null> {
    const out = new Map<number, number | null>();
    const S = this.members.length;
    owners.forEach((owner, mb) => {
      const r = this.route(mb, owner);
      const lastPeer = r.length === S ? r[S - 1] : undefined;
      out.set(mb, lastPeer ? (this.traces.get(lastPeer)?.losses.get(mb) ?? null) : null);
    });
    return out;
  }

  /** The inputs a member received, as [mb, kind, digest]: activations from the previous stage, gradients from the next. */
  inputsOf(peer: string): [number, 'act' | 'grad', string][] {
    const t = this.traces.get(peer);
    if (!t) return [];
    return t.recv.map(([mb, from, d]) => [mb, this.members[t.stage - 1]?.includes(from) ? 'act' : 'grad', d]);
  }

  /** The neighbours' view of a member's inputs: what they say they sent it (the validator checks the upload against it). */
  inputsSentTo(peer: string): [number, 'act' | 'grad', string][] {
    const t = this.traces.get(peer);
    if (!t) return [];
    const out: [number, 'act' | 'grad', string][] = [];
    for (const o of this.traces.values()) for (const [mb, to, d] of o.sent) if (to === peer) out.push([mb, o.stage < t.stage ? 'act' : 'grad', d]);
    return out;
  }

  /** The outputs a member sent, as [mb, kind, digest]. */
  outputsOf(peer: string): [number, 'act' | 'grad', string][] {
    const t = this.traces.get(peer);
    if (!t) return [];
    return t.sent.map(([mb, to, d]) => [mb, this.members[t.stage + 1]?.includes(to) ? 'act' : 'grad', d]);
  }

  /** A member's forward / backward count in this attempt: forwards = activations it sent on, or its losses (last stage). */
  work(peer: string): { forward: number; backward: number } {
    const t = this.traces.get(peer);
    if (!t) return { forward: 0, backward: 0 };
    const S = this.members.length;
    const forward = t.stage === S - 1 ? t.backward.length : t.sent.filter(([, to]) => this.members[t.stage + 1]?.includes(to)).length;
    return { forward, backward: t.backward.length };
  }
}
