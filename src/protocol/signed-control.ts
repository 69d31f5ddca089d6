// Signed control (docs/trust.md, "Signed control"): every control message travels as `{type, seq, body, sig}`, where
// `body` is the message's JSON text and `sig` the sender's P-256 signature of
//   tabswarm-control\n<coordinator fingerprint>/<room>\n<sender id>\n<seq>\n<body>
// The scope (coordinator fingerprint and room) keeps a message from being replayed into another room or run; the
// sender id keeps the signaling server from re-attributing it; `seq` (per sender, strictly increasing, starting at
// the sender's clock in microseconds so a sender that comes back continues above its old numbers) makes replays and
// reorderings visible.
//
// The envelope is parsed synchronously by the signaling client's codec (swarmControl); the signature needs WebCrypto,
// which is asynchronous, so SignedControl verifies after delivery, one sender's messages in the order they came, and
// delivers only what passed: unsigned, mis-signed, replayed, reordered and type-mismatched messages are dropped,
// counted and logged (rate-limited). A peer obeys only its room's coordinator key (the fingerprint it joined with).
import { z } from 'zod';
import { CONTROL_LIMITS, MAX_CONTROL_BYTES, type ControlParse } from '../net/control-envelope';
import { parseBoundedJson } from '../net/bounded-json';
import { Emitter, type Unsubscribe } from '../net/emitter';
import { fingerprintOf, idOfFingerprint, SIGNATURE_CHARS, verifySignature, type Identity } from '../net/identity';
import type { SignalingClient, SignalingEvents } from '../net/signaling-client';
import { controlMessageSchema, type ControlMessage } from './messages';

export const CONTROL_SIGNING_DOMAIN = 'tabswarm-control';

/** The signed wire form of a control message. */
export const signedEnvelopeSchema = z.strictObject({
  type: z.string().min(1).max(64),
  seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  body: z.string().min(2).max(MAX_CONTROL_BYTES),
  sig: z.string().length(SIGNATURE_CHARS),
});
export type SignedEnvelope = z.infer<typeof signedEnvelopeSchema>;

/** Where a signature is valid: the room bound to its coordinator's key. */
export interface ControlScope {
  coordinatorFingerprint: string;
  room: string;
}

/** The exact text a control signature covers. */
export function controlSigningText(scope: ControlScope, sender: string, seq: number, body: string): string {
  return `${CONTROL_SIGNING_DOMAIN}\n${scope.coordinatorFingerprint}/${scope.room}\n${sender}\n${seq}\n${body}`;
}

/** The envelope check of the signaling codec (synchronous, no signature yet). */
export function parseSignedEnvelope(payload: unknown): ControlParse<SignedEnvelope> {
  const r = signedEnvelopeSchema.safeParse(payload);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  const where = issue ? `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}` : 'malformed';
  return { ok: false, error: `unsigned or malformed control envelope (${where})` };
}

/** Checks `msg` and serializes it; throws a clear error if it is not a valid control message. */
export function controlBody(msg: ControlMessage): string {
  const r = controlMessageSchema.safeParse(msg);
  if (!r.success) throw new Error(`invalid ${String((msg as { type?: unknown }).type).slice(0, 64)} message: ${r.error.issues[0]?.message ?? ''}`);
  const body = JSON.stringify(msg);
  // The envelope escapes the body once more; its whole text must stay within one control payload.
  const size = new TextEncoder().encode(
    JSON.stringify({ type: msg.type, seq: Number.MAX_SAFE_INTEGER, body, sig: 'x'.repeat(SIGNATURE_CHARS) }),
  ).byteLength;
  if (size > MAX_CONTROL_BYTES) throw new Error(`${msg.type} message of ${size} bytes signed > ${MAX_CONTROL_BYTES}`);
  return body;
}

export async function signControl(identity: Identity, scope: ControlScope, seq: number, body: string, type: string): Promise<SignedEnvelope> {
  const sig = await identity.sign(controlSigningText(scope, identity.id, seq, body));
  return { type, seq, body, sig };
}

/** Why a control message was dropped. */
export const CONTROL_DROP_REASONS = [
  'malformed',
  'unknown-sender',
  'not-coordinator',
  'bad-signature',
  'stale-seq',
  'bad-body',
  'type-mismatch',
  'flood',
] as const;
export type ControlDropReason = (typeof CONTROL_DROP_REASONS)[number];

/**
 * Opens a verified envelope's body: bounded JSON, the message schema, and the envelope's type. The signature must
 * have been checked already (openSignedControl does both).
 */
export function readControlBody(env: SignedEnvelope): { ok: true; value: ControlMessage } | { ok: false; reason: ControlDropReason; error: string } {
  const parsed = parseBoundedJson(env.body, CONTROL_LIMITS);
  if (!parsed.ok) return { ok: false, reason: 'bad-body', error: `body ${parsed.detail}` };
  const r = controlMessageSchema.safeParse(parsed.value);
  if (!r.success) {
    const issue = r.error.issues[0];
    return {
      ok: false,
      reason: 'bad-body',
      error: `body: ${issue ? `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
    };
  }
  if (r.data.type !== env.type)
    return { ok: false, reason: 'type-mismatch', error: `envelope says ${env.type.slice(0, 64)}, body is ${r.data.type}` };
  return { ok: true, value: r.data };
}

/** Verifies `env` as `sender`'s (whose public key is `key`) in `scope`, then reads its body. Never throws. */
export async function openSignedControl(
  env: SignedEnvelope,
  scope: ControlScope,
  sender: string,
  key: string,
): Promise<{ ok: true; value: ControlMessage } | { ok: false; reason: ControlDropReason; error: string }> {
  if (!(await verifySignature(key, controlSigningText(scope, sender, env.seq, env.body), env.sig)))
    return { ok: false, reason: 'bad-signature', error: `signature of seq ${env.seq} does not verify with ${sender}'s key` };
  return readControlBody(env);
}

// ------------------------------------------------------------------------------------------- the control plane

/** A signaling connection whose codec is swarmControl (src/protocol/control-codec.ts). */
export type EnvelopeSignaling = SignalingClient<SignedEnvelope>;

/** What SignedControl needs of it (a SignalingClient; unit tests pass an in-memory room). */
export type SignedSignaling = Pick<
  EnvelopeSignaling,
  | 'peerId'
  | 'room'
  | 'role'
  | 'isOpen'
  | 'isUsable'
  | 'isPresent'
  | 'identity'
  | 'coordinatorFingerprint'
  | 'keyOf'
  | 'peers'
  | 'coordinatorId'
  | 'on'
  | 'sendControl'
  | 'close'
>;

type OwnEvents = {
  /** A verified message, in its sender's order. */
  control: { from: string; msg: ControlMessage };
  dropped: { from: string; reason: ControlDropReason; error: string };
  /** A member left: after the messages it sent before leaving were verified and delivered. */
  'peer-left': SignalingEvents<SignedEnvelope>['peer-left'];
};
/** SignedControl's events: its own, and the signaling connection's others (peer-joined, close, ...) passed through. */
export type SignedControlEvents = OwnEvents & Omit<SignalingEvents<SignedEnvelope>, keyof OwnEvents | 'control-rejected'>;
const OWN = new Set<string>(['control', 'dropped', 'peer-left']);

export interface SignedControlOptions {
  log?: (s: string) => void;
  /** Messages of one sender waiting for verification before more are dropped as a flood (default 1024). */
  maxPending?: number;
}

/**
 * The swarm's control plane over a signaling connection: signs what it sends (in send order), verifies what it
 * receives (per sender, in arrival order) and delivers typed messages. The Coordinator's ControlPlane and the
 * SwarmPeer's control both run on it. The connection's own properties pass through.
 */
export class SignedControl<S extends SignedSignaling = SignedSignaling> {
  private readonly emitter = new Emitter<OwnEvents>();
  readonly drops: Record<ControlDropReason, number> = Object.fromEntries(CONTROL_DROP_REASONS.map((r) => [r, 0])) as Record<
    ControlDropReason,
    number
  >;
  private seq = 0;
  private sending: Promise<void> = Promise.resolve();
  private readonly lastSeq = new Map<string, number>();
  private readonly queues = new Map<string, { tail: Promise<void>; pending: number }>();
  private readonly offs: Unsubscribe[] = [];
  private closed = false;
  private readonly scope: ControlScope;
  private readonly coordinatorKeyId: string;

  constructor(
    readonly signaling: S,
    private readonly opts: SignedControlOptions = {},
  ) {
    this.scope = { coordinatorFingerprint: signaling.coordinatorFingerprint, room: signaling.room };
    this.coordinatorKeyId = idOfFingerprint(signaling.coordinatorFingerprint);
    this.offs.push(
      signaling.on('control', ({ from, msg }) => this.receive(from, msg)),
      signaling.on('control-rejected', ({ from, error }) => this.drop(from, 'malformed', error)),
      signaling.on('peer-left', (ev) => {
        // After what it sent before leaving: the coordinator counts a report that raced its sender's exit.
        const q = this.queues.get(ev.peerId);
        this.queues.delete(ev.peerId);
        if (q) void q.tail.then(() => this.emitter.emit('peer-left', ev));
        else this.emitter.emit('peer-left', ev);
      }),
    );
  }

  get peerId(): string {
    return this.signaling.peerId;
  }
  get room(): string {
    return this.signaling.room;
  }
  get role(): S['role'] {
    return this.signaling.role;
  }
  get identity(): S['identity'] {
    return this.signaling.identity;
  }
  get coordinatorFingerprint(): string {
    return this.signaling.coordinatorFingerprint;
  }
  get peers(): S['peers'] {
    return this.signaling.peers;
  }
  get coordinatorId(): string | null {
    return this.signaling.coordinatorId;
  }
  keyOf(peerId: string): string | undefined {
    return this.signaling.keyOf(peerId);
  }

  /** Connected to the signaling server right now (false while it reconnects). */
  get isOpen(): boolean {
    return !this.closed && this.signaling.isOpen;
  }

  /** Not closed: what is sent now leaves at once or, while the signaling connection reconnects, after the rejoin. */
  get isUsable(): boolean {
    return !this.closed && this.signaling.isUsable;
  }

  /** A message to `peerId` would reach it now: connected, and it is in the server's room (not waited for after a rejoin). */
  reachable(peerId: string): boolean {
    return this.isOpen && this.signaling.isPresent(peerId);
  }

  on<K extends keyof SignedControlEvents>(event: K, handler: (ev: SignedControlEvents[K]) => void): Unsubscribe {
    if (OWN.has(event)) return this.emitter.on(event as keyof OwnEvents, handler as (ev: unknown) => void);
    return this.signaling.on(event as Exclude<K, keyof OwnEvents>, handler as never);
  }

  /**
   * Signs and sends `msg` (to the coordinator when `to` is omitted; the coordinator: a peer id or '*'). Throws at once
   * if `msg` is not a valid control message or too large signed; sending itself is asynchronous and in call order.
   */
  sendControl(msg: ControlMessage, to?: string): void {
    if (this.closed) return;
    const body = controlBody(msg);
    // The sequence number is taken now, so seq order is call order whatever the signing takes.
    this.seq = Math.max(this.seq + 1, Math.floor(Date.now() * 1000));
    const seq = this.seq;
    const identity = this.signaling.identity;
    this.sending = this.sending
      .then(async () => {
        const env = await signControl(identity, this.scope, seq, body, msg.type);
        // While reconnecting the signaling client queues it (seq order is send order there too).
        if (this.signaling.isUsable) this.signaling.sendControl(env, to);
      })
      .catch((err: unknown) => this.log(`could not send ${msg.type}: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** Resolves when every message sent so far has left. */
  flushed(): Promise<void> {
    return this.sending;
  }

  /** Stops receiving; closes the signaling connection once the messages already sent have left. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.offs.splice(0)) off();
    void this.sending.finally(() => this.signaling.close());
  }

  private receive(from: string, env: SignedEnvelope): void {
    if (this.closed) return;
    // A peer obeys its room's coordinator only; the coordinator hears every member (authorize.ts says who may report what).
    if (this.signaling.role !== 'coordinator' && from !== this.coordinatorKeyId)
      return this.drop(from, 'not-coordinator', `${env.type.slice(0, 64)} from a member that is not the room's coordinator`);
    // The key now: a sender that leaves right after sending is gone from the room by the time its turn comes.
    const key = this.signaling.keyOf(from);
    let q = this.queues.get(from);
    if (!q) this.queues.set(from, (q = { tail: Promise.resolve(), pending: 0 }));
    if (q.pending >= (this.opts.maxPending ?? 1024)) return this.drop(from, 'flood', `more than ${q.pending} messages waiting for verification`);
    const queue = q;
    queue.pending++;
    queue.tail = queue.tail
      .then(() => this.verify(from, key, env))
      .catch((err: unknown) => this.drop(from, 'malformed', err instanceof Error ? err.message : String(err)))
      .finally(() => queue.pending--);
  }

  private async verify(from: string, key: string | undefined, env: SignedEnvelope): Promise<void> {
    if (!key) return this.drop(from, 'unknown-sender', `no key known for ${from}`);
    if (this.signaling.role !== 'coordinator' && (await fingerprintOf(key)) !== this.scope.coordinatorFingerprint)
      return this.drop(from, 'not-coordinator', `${from}'s key is not the room's coordinator key`);
    const opened = await openSignedControl(env, this.scope, from, key);
    if (this.closed) return;
    if (!opened.ok && opened.reason === 'bad-signature') return this.drop(from, opened.reason, opened.error);
    // Signed by the sender: its number is used up, whether or not its body reads.
    const last = this.lastSeq.get(from) ?? 0;
    if (env.seq <= last)
      return this.drop(from, 'stale-seq', `seq ${env.seq} <= ${last} already seen (${env.seq === last ? 'replayed' : 'out of order'})`);
    this.lastSeq.set(from, env.seq);
    if (!opened.ok) return this.drop(from, opened.reason, opened.error);
    this.emitter.emit('control', { from, msg: opened.value });
  }

  private drop(from: string, reason: ControlDropReason, error: string): void {
    const n = ++this.drops[reason];
    if (n <= 5 || n % 100 === 0) this.log(`dropped control from ${from.slice(0, 64)} (${reason}, ${n} so far): ${error.slice(0, 300)}`);
    this.emitter.emit('dropped', { from, reason, error });
  }

  private log(s: string): void {
    this.opts.log?.(`[${this.signaling.peerId}] ${s}`);
  }
}
