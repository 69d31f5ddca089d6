// Client side of the signaling protocol. Runs in the browser (native WebSocket) and in Node (pass the `ws`
// constructor from ./rtc-node.js: Node 20 has no global WebSocket). Every server message is bounded in size and
// depth, then schema-checked. Control payloads are opaque to src/net: the layer above passes a ControlCodec that
// types them (src/protocol's swarmControl); payloads it rejects are reported as 'control-rejected' and dropped.
//
// Identity (docs/trust.md): the client signs the server's challenge with its key; its id is derived from that key.
// It checks end to end what the server says about the room: every member's id is its key's, and the only member
// taken as coordinator is the one whose key has the room's coordinator fingerprint (others are ignored and logged).
// Server messages are handled one after the other on a promise chain, since those checks are async (WebCrypto).
//
// Reconnect (docs/resilience.md, "Signaling server restart"): a connection that breaks (not one the server closed on
// purpose, reconnect-policy.ts) is rejoined with backoff, with the same key, room, role and token. Meanwhile what is
// sent waits in a bounded queue (signaling-outbox.ts) and `close` is not emitted; after the rejoin the new roster is
// diffed with the old one (a member missing from it leaves only after `rejoinGraceMs`: everyone rejoins a restarted
// server, in some order), and each member's queued messages leave, in order, once that member is back.

import { checkControlPayload, opaqueControl, type ControlCodec, type ControlPayload } from './control-envelope';
import { Emitter, type Unsubscribe } from './emitter';
import { ephemeralIdentity, idOfFingerprint, sha256Hex, type Identity } from './identity';
import { backoffDelay, DEFAULT_RECONNECT, isTransientRefusal, shouldReconnect, type ReconnectOptions } from './reconnect-policy';
import {
  memberProblem,
  openJoinedSocket,
  parseServerMessage,
  SignalingError,
  type JoinParams,
  type WebSocketConstructor,
  type WebSocketLike,
} from './signaling-handshake';
import { SignalingOutbox, type OutboxEntry } from './signaling-outbox';
import type { ClientMessage, ErrorCode, PeerSummary, Role, ServerMessageOf, SignalData } from './signaling-protocol';
import { TimeoutError, withTimeout } from './timers';
import { utf8Length, WIRE_CONTROL, WIRE_LINK, type WireMeter } from './wire-meter';

export { SignalingError, type WebSocketConstructor, type WebSocketLike } from './signaling-handshake';
export type { ReconnectOptions } from './reconnect-policy';

export interface SignalingConnectOptions<C = ControlPayload> {
  room: string;
  role: Role;
  /** Fingerprint of the room's coordinator key (64 hex). Required for a peer; a coordinator uses its own. */
  coordinator?: string;
  /** This client's key pair; default: a fresh ephemeral one. Its id is this client's peer id. */
  identity?: Identity;
  /** Peer: the room's join token, if it has one. */
  token?: string;
  /** Coordinator: hex SHA-256 of the join token peers must present (or give `token` and it is hashed here). */
  tokenHash?: string;
  /** Where end-to-end check failures are reported (default console.warn). */
  log?: (s: string) => void;
  /** Defaults to globalThis.WebSocket (browsers, Node >= 22). */
  WebSocket?: WebSocketConstructor;
  timeoutMs?: number;
  /** Types incoming control payloads and checks outgoing ones; default: opaque payloads. */
  control?: ControlCodec<C>;
  /** Counts the bytes this client sends: control messages under WIRE_CONTROL, the rest (join, signals, pings) WIRE_LINK. */
  meter?: WireMeter;
  /** Reconnect after a broken connection (defaults: DEFAULT_RECONNECT; `reconnectMs: 0` never reconnects). */
  reconnect?: Partial<ReconnectOptions>;
}

export interface SignalEvent {
  from: string;
  connId: string;
  data: SignalData;
}

export interface ServerError {
  code: ErrorCode;
  message: string;
  strikesLeft: number;
}

/** A member the server announced whose key does not check out: ignored. */
export interface RejectedMember {
  summary: PeerSummary;
  reason: string;
}

export type SignalingEvents<C = ControlPayload> = {
  'peer-joined': PeerSummary;
  'peer-left': PeerSummary;
  signal: SignalEvent;
  control: { from: string; msg: C };
  /** A control payload the codec refused: dropped, never delivered as `control`. */
  'control-rejected': { from: string; error: string };
  error: ServerError;
  /**
   * The client is done: close() was called, the server closed the connection on purpose (e.g. 4001, replaced by a
   * newer connection with the same key), it refused a rejoin (`error` says why), or reconnecting gave up.
   */
  close: { code: number; reason: string; error?: SignalingError };
  /** The connection broke; the next rejoin attempt (1-based) starts in `delayMs`. `code`/`reason`: why it broke. */
  reconnecting: { attempt: number; delayMs: number; code: number; reason: string };
  /** Rejoined after an outage of `ms` (first break to the new roster), after `attempts` attempts. */
  reconnected: { ms: number; attempts: number };
  /** The server announced a member whose id or role does not match its key (end-to-end check): ignored. */
  'member-rejected': RejectedMember;
};

const OPEN = 1;

/** What a WebRTC link needs of the signaling connection (PeerNetwork, raw-link): no control plane, so any codec. */
export interface SignalingLink {
  readonly peerId: string;
  readonly room: string;
  readonly peers: ReadonlyMap<string, Role>;
  /** Connected to the server right now (false while reconnecting). */
  readonly isOpen: boolean;
  /** Not closed for good: what is sent now leaves at once or after the reconnect (use this to decide whether to send). */
  readonly isUsable: boolean;
  /** This client's key pair (its id is peerId): signs the DTLS binding of its links. */
  readonly identity: Identity;
  /** Public key of a current room member. */
  keyOf(peerId: string): string | undefined;
  on(event: 'signal', handler: (ev: SignalEvent) => void): Unsubscribe;
  on(event: 'peer-left', handler: (ev: PeerSummary) => void): Unsubscribe;
  on(event: 'peer-joined', handler: (ev: PeerSummary) => void): Unsubscribe;
  sendSignal(to: string, connId: string, data: SignalData): void;
  waitForPeer(peerId: string, timeoutMs: number): Promise<void>;
}

/** Messages sent per burst while the queue drains, and the pause between bursts: under the server's rate limit. */
const FLUSH_BURST = 100;
const FLUSH_PAUSE_MS = 500;

/** An outage in progress: since when, how many rejoin attempts so far, and why it broke / why the last attempt failed. */
interface Outage {
  since: number;
  attempts: number;
  code: number;
  reason: string;
  timer: ReturnType<typeof setTimeout> | null;
}

export class SignalingClient<C = ControlPayload> implements SignalingLink {
  readonly events = new Emitter<SignalingEvents<C>>();
  /**
   * Other members of the room, kept current from peer-joined / peer-left. After a rejoin it still holds the members
   * that have not rejoined yet, until their grace runs out (isPresent says who is back).
   */
  readonly peers = new Map<string, Role>();
  /** Public keys of the other members (same keys as `peers`). */
  private readonly keys = new Map<string, string>();
  /** Members in the server's current room, as it told this connection (a subset of `peers`). */
  private present = new Set<string>();
  private closed = false;
  private nonce = 0;
  private readonly pongs = new Map<number, () => void>();
  /** Server messages are handled in order, one at a time (the member checks are async). */
  private chain: Promise<void> = Promise.resolve();
  /** Bumped per socket: events of a socket that is not the current one are ignored. */
  private generation = 0;
  private outage: Outage | null = null;
  /** Control messages sent straight out in the last replayControlMs (replayed after a break). */
  private recent: { at: number; msg: Extract<ClientMessage, { type: 'control' }>; to: string[] }[] = [];
  private graceTimer: ReturnType<typeof setTimeout> | null = null;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly outbox: SignalingOutbox;
  private readonly policy: ReconnectOptions;
  private readonly coordinatorKeyId: string;

  private constructor(
    private ws: WebSocketLike,
    readonly room: string,
    readonly peerId: string,
    readonly role: Role,
    readonly identity: Identity,
    /** Fingerprint of the room's coordinator key: the only key this client takes as coordinator. */
    readonly coordinatorFingerprint: string,
    peers: PeerSummary[],
    private readonly codec: ControlCodec<C>,
    private readonly params: JoinParams,
    private readonly log: (s: string) => void,
    /** The caller's log, for reconnect notices (the default log only warns of failed member checks). */
    private readonly info: ((s: string) => void) | null,
    reconnect: Partial<ReconnectOptions>,
  ) {
    this.policy = { ...DEFAULT_RECONNECT, ...reconnect };
    this.outbox = new SignalingOutbox(this.policy.maxQueued, this.policy.maxQueuedBytes);
    this.coordinatorKeyId = idOfFingerprint(coordinatorFingerprint);
    for (const p of peers) this.addMember(p);
  }

  static async connect<C = ControlPayload>(url: string, opts: SignalingConnectOptions<C>): Promise<SignalingClient<C>> {
    const Ctor = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) throw new Error('no WebSocket implementation: pass opts.WebSocket (nodeWebSocket from rtc-node.ts)');
    const identity = opts.identity ?? (await ephemeralIdentity());
    const coordinator = opts.role === 'coordinator' ? identity.fingerprint : opts.coordinator;
    if (coordinator === undefined) throw new SignalingError('invalid', "a peer must name the room's coordinator (its key's fingerprint)");
    if (opts.role === 'coordinator' && opts.coordinator !== undefined && opts.coordinator !== identity.fingerprint) {
      throw new SignalingError('not-coordinator', `this key's fingerprint is ${identity.fingerprint}, not ${opts.coordinator}`);
    }
    const tokenHash =
      opts.role === 'coordinator' ? (opts.tokenHash ?? (opts.token === undefined ? undefined : await sha256Hex(opts.token))) : undefined;
    const log = opts.log ?? ((s: string) => console.warn(`[signaling] ${s}`));
    const params: JoinParams = {
      url,
      room: opts.room,
      role: opts.role,
      coordinator,
      identity,
      token: opts.token,
      tokenHash,
      WebSocket: Ctor,
      timeoutMs: opts.timeoutMs ?? 10_000,
      meter: opts.meter ?? null,
    };
    const { ws, joined, early } = await openJoinedSocket(params);
    // Closes that happen while the roster is checked are seen by the client's handlers, set at once.
    const held: unknown[] = [...early];
    const heldClose: { ev: { code: number; reason: string } | null } = { ev: null };
    ws.onmessage = (ev) => held.push(ev.data);
    ws.onclose = (ev) => (heldClose.ev ??= { code: ev.code, reason: ev.reason });
    ws.onerror = () => undefined;
    const peers: PeerSummary[] = [];
    for (const p of joined.peers) {
      const why = await memberProblem(p, coordinator);
      if (why === null) peers.push(p);
      else log(`ignoring member ${p.peerId} of ${opts.room}: ${why}`);
    }
    // Without a codec the payloads stay opaque: C is then ControlPayload (the default type argument).
    const codec = opts.control ?? (opaqueControl as ControlCodec<unknown> as ControlCodec<C>);
    const client = new SignalingClient<C>(
      ws,
      joined.room,
      joined.peerId,
      joined.role,
      identity,
      coordinator,
      peers,
      codec,
      params,
      log,
      opts.log ?? null,
      opts.reconnect ?? {},
    );
    client.present = new Set(peers.map((p) => p.peerId));
    // What came while the roster was checked is replayed only after the caller subscribed: it gets the client back
    // and subscribes in the microtasks after this returns, and the replay waits for a macrotask. (Replayed at once, a
    // control message that came in that window — a peer greeting a coordinator that just arrived, e.g. a resumed one
    // — was emitted to nobody, and its next message arrived alone: "peer-info without a hello".) Later messages keep
    // waiting behind the held ones, so the order stays the server's.
    setTimeout(() => {
      if (client.closed) return;
      client.attach(ws);
      for (const data of held) client.enqueue(data);
      if (heldClose.ev) client.broke(client.generation, heldClose.ev.code, heldClose.ev.reason);
    }, 0);
    return client;
  }

  /** Peer id of the room's coordinator, if one has joined. */
  get coordinatorId(): string | null {
    for (const [id, role] of this.peers) if (role === 'coordinator') return id;
    return null;
  }

  /** Public key (base64url raw P-256) of a current member of the room. */
  keyOf(peerId: string): string | undefined {
    return peerId === this.peerId ? this.identity.publicKey : this.keys.get(peerId);
  }

  /** Connected to the server right now: false while reconnecting and once closed. */
  get isOpen(): boolean {
    return !this.closed && this.outage === null && this.ws.readyState === OPEN;
  }

  /** Not closed for good: sends leave now or, while reconnecting, after the rejoin. */
  get isUsable(): boolean {
    return !this.closed;
  }

  /** The connection broke and the client is trying to rejoin. */
  get isReconnecting(): boolean {
    return !this.closed && this.outage !== null;
  }

  /**
   * `peerId` is in the server's room as this connection sees it now: false while this client is reconnecting, and for
   * a member that has not rejoined a restarted server yet (still in `peers` during its grace).
   */
  isPresent(peerId: string): boolean {
    return this.isOpen && this.present.has(peerId);
  }

  /** Messages waiting for the reconnect or for their member to come back. */
  get queued(): number {
    return this.outbox.size;
  }

  on<K extends keyof SignalingEvents<C>>(event: K, handler: (payload: SignalingEvents<C>[K]) => void): Unsubscribe {
    return this.events.on(event, handler);
  }

  /** Throws a SignalingError if the client is closed, or if the reconnect queue is full. */
  sendSignal(to: string, connId: string, data: SignalData): void {
    this.send({ type: 'signal', to, connId, data });
  }

  /** Peers: to the coordinator (omit `to`). Coordinator: to a peer id or '*' for the whole room. */
  /** Throws if `msg` fails the envelope (size, depth, shape) or the codec, or as sendSignal does. */
  sendControl(msg: C, to?: string): void {
    const checked = checkControlPayload(msg);
    if (!checked.ok) throw new SignalingError('invalid', `invalid control message: ${checked.error}`);
    const typed = this.codec.parse(checked.value.payload);
    if (!typed.ok) throw new SignalingError('invalid', `invalid control message: ${typed.error}`);
    this.send({ type: 'control', msg: checked.value.payload, ...(to !== undefined ? { to } : {}) });
  }

  /** Resolves once `peerId` is in the room (at once if it already is); rejects after `timeoutMs`. */
  waitForPeer(peerId: string, timeoutMs: number): Promise<void> {
    if (this.peers.has(peerId)) return Promise.resolve();
    let off: Unsubscribe = () => undefined;
    const joined = new Promise<void>((resolve) => {
      off = this.on('peer-joined', (p) => {
        if (p.peerId === peerId) resolve();
      });
    });
    return withTimeout(joined, timeoutMs, `waiting for ${peerId} to join ${this.room}`).finally(() => off());
  }

  /** Round trip to the server, ms. While reconnecting it waits for the rejoin first (all within `timeoutMs`). */
  async ping(timeoutMs = 5000): Promise<number> {
    const t0 = performance.now();
    if (this.closed) throw new SignalingError('closed', 'signaling connection is closed');
    if (this.outage) await withTimeout(this.rejoined(), timeoutMs, 'signaling ping (waiting for the reconnect)');
    const nonce = ++this.nonce;
    const pong = new Promise<void>((resolve) => this.pongs.set(nonce, resolve));
    this.sendNow(JSON.stringify({ type: 'ping', nonce } satisfies ClientMessage), false);
    try {
      await withTimeout(pong, Math.max(1, timeoutMs - (performance.now() - t0)), 'signaling ping');
    } finally {
      this.pongs.delete(nonce);
    }
    return performance.now() - t0;
  }

  /** Raw send for tests of the server's validation: bypasses the typed API (and the reconnect queue). */
  sendRaw(text: string): void {
    if (!this.isOpen) throw new SignalingError('closed', 'signaling connection is not open');
    this.ws.send(text);
  }

  close(): void {
    if (this.closed) return;
    this.generation++; // the socket's own close event is not a break
    this.ws.close(1000, 'bye');
    this.finish(1000, 'closed locally');
  }

  // ------------------------------------------------------------------------------------------- sending

  /** The members a message is for: a signal's addressee, a peer's coordinator, the coordinator's addressee or everyone. */
  private addressees(msg: Extract<ClientMessage, { type: 'signal' | 'control' }>): string[] {
    if (msg.type === 'signal') return [msg.to];
    if (this.role !== 'coordinator') return [this.coordinatorKeyId];
    if (msg.to === '*') return [...this.peers.keys()];
    return [msg.to ?? this.coordinatorKeyId];
  }

  private send(msg: Extract<ClientMessage, { type: 'signal' | 'control' }>): void {
    if (this.closed) throw new SignalingError('closed', 'signaling connection is closed');
    const control = msg.type === 'control';
    const to = this.addressees(msg);
    // Straight out when the socket is open and nothing for these members waits (their order) and each is in the room
    // or unknown to us (then the server answers as it always did); otherwise queued per member. A socket that died
    // but whose close event has not come yet is not open: the message waits for the outage that event starts.
    const direct = this.isOpen && to.every((id) => !this.outbox.has(id) && (this.present.has(id) || !this.peers.has(id)));
    if (direct) {
      const text = JSON.stringify(msg);
      this.sendNow(text, control);
      if (control && this.policy.replayControlMs > 0) this.remember(msg, to);
      return;
    }
    const entries = this.entriesOf(msg, to);
    const why = this.outbox.refusal(entries);
    if (why !== null) throw new SignalingError('queue-full', `cannot queue ${msg.type} while reconnecting: ${why}`);
    this.outbox.push(entries);
    this.flush();
  }

  /** One outbox entry per member: a broadcast waits member by member, each gets its copy when it is back. */
  private entriesOf(msg: Extract<ClientMessage, { type: 'signal' | 'control' }>, to: readonly string[]): OutboxEntry[] {
    const control = msg.type === 'control';
    return to.map((id) => {
      const text = JSON.stringify(msg.type === 'control' && msg.to === '*' ? { ...msg, to: id } : msg);
      return { to: id, text, bytes: utf8Length(text), control };
    });
  }

  /** Keeps a control message sent straight out for replayControlMs: the server may die before relaying it. */
  private remember(msg: Extract<ClientMessage, { type: 'control' }>, to: string[]): void {
    const now = performance.now();
    this.recent.push({ at: now, msg, to });
    while (this.recent.length > 0 && (this.recent.length > this.policy.maxQueued || now - this.recent[0].at > this.policy.replayControlMs))
      this.recent.shift();
  }

  /**
   * The connection broke: the control messages sent in the last replayControlMs may have died with the server, so
   * they go again after the rejoin, ahead of everything queued since (the layer above drops the copies its members
   * did get: SignedControl's per-sender seq).
   */
  private replayRecent(): void {
    const since = performance.now() - this.policy.replayControlMs;
    const entries = this.recent.filter((r) => r.at >= since).flatMap((r) => this.entriesOf(r.msg, r.to));
    this.recent = [];
    if (entries.length > 0 && !this.outbox.unshift(entries)) this.info?.(`not replaying ${entries.length} recent control message(s): queue full`);
  }

  private sendNow(text: string, control: boolean): void {
    if (!this.isOpen) throw new SignalingError('closed', 'signaling connection is closed');
    this.ws.send(text);
    this.params.meter?.add(control ? WIRE_CONTROL : WIRE_LINK, utf8Length(text));
  }

  /** Sends what waits for members that are in the room, a burst at a time (the server's rate limit). */
  private flush(): void {
    if (this.flushTimer !== null || !this.isOpen) return;
    // Queued for a member that is neither back nor waited for (it left, or was never here): the server would refuse it.
    for (const id of this.outbox.addressees()) {
      if (this.present.has(id) || this.peers.has(id)) continue;
      const n = this.outbox.dropFor(id);
      this.info?.(`dropped ${n} queued message(s) for ${id}: not in ${this.room}`);
    }
    const batch = this.outbox.take((id) => this.present.has(id), FLUSH_BURST);
    for (const e of batch) this.sendNow(e.text, e.control);
    if (batch.length === FLUSH_BURST) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.flush();
      }, FLUSH_PAUSE_MS);
    }
  }

  // ------------------------------------------------------------------------------------------- receiving

  private attach(ws: WebSocketLike): void {
    const gen = ++this.generation;
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (gen === this.generation) this.enqueue(ev.data);
    };
    ws.onclose = (ev) => this.broke(gen, ev.code, ev.reason);
    ws.onerror = () => undefined; // always followed by close
  }

  /** Handles `data` after every message received before it. */
  private enqueue(data: unknown): void {
    this.after(() => this.handle(data));
  }

  /** Runs `fn` on the message chain, after everything before it. */
  private after(fn: () => Promise<void> | void): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => {
      // A bug in a handler must not take the connection's message loop down with it: report it and go on.
      queueMicrotask(() => {
        throw err;
      });
    });
  }

  private addMember(p: PeerSummary): void {
    this.peers.set(p.peerId, p.role);
    this.keys.set(p.peerId, p.key);
  }

  private removeMember(peerId: string): void {
    this.peers.delete(peerId);
    this.keys.delete(peerId);
    this.present.delete(peerId);
    this.outbox.dropFor(peerId);
  }

  private async handle(data: unknown): Promise<void> {
    const msg = parseServerMessage(data);
    if (!msg) {
      this.events.emit('error', { code: 'malformed', message: 'unparseable message from the server', strikesLeft: 0 });
      return;
    }
    switch (msg.type) {
      case 'peer-joined': {
        const summary: PeerSummary = { peerId: msg.peerId, role: msg.role, key: msg.key };
        const why = await memberProblem(summary, this.coordinatorFingerprint);
        if (why !== null) {
          this.log(`ignoring member ${msg.peerId} of ${this.room}: ${why}`);
          this.events.emit('member-rejected', { summary, reason: why });
          return;
        }
        this.present.add(msg.peerId);
        if (this.keys.get(msg.peerId) === msg.key) {
          // A member waited for after our rejoin is back: no event (it never left as far as the room is concerned).
          this.flush();
          return;
        }
        this.addMember(summary);
        this.events.emit('peer-joined', summary);
        return;
      }
      case 'peer-left':
        // Only the member we know under that id and key leaves (a rejected impostor's departure changes nothing).
        if (this.keys.get(msg.peerId) !== msg.key) return;
        this.removeMember(msg.peerId);
        this.events.emit('peer-left', { peerId: msg.peerId, role: msg.role, key: msg.key });
        return;
      case 'signal':
        this.events.emit('signal', { from: msg.from, connId: msg.connId, data: msg.data });
        return;
      case 'control': {
        const typed = this.codec.parse(msg.msg);
        if (typed.ok) this.events.emit('control', { from: msg.from, msg: typed.value });
        else this.events.emit('control-rejected', { from: msg.from, error: typed.error });
        return;
      }
      case 'pong':
        if (msg.nonce !== undefined) this.pongs.get(msg.nonce)?.();
        return;
      case 'error':
        this.events.emit('error', { code: msg.code, message: msg.message, strikesLeft: msg.strikesLeft });
        return;
      case 'joined':
      case 'challenge':
        return; // only expected once, during a join
    }
  }

  // ------------------------------------------------------------------------------------------- reconnecting

  /** The socket of generation `gen` closed: end, or start (or go on with) an outage. */
  private broke(gen: number, code: number, reason: string): void {
    if (gen !== this.generation || this.closed) return;
    this.generation++;
    if (this.outage) {
      // The new connection broke before its rejoin was complete: the same outage goes on.
      this.outage.reason = `${code} ${reason}`.trim();
      this.scheduleAttempt();
      return;
    }
    if (!shouldReconnect(code) || this.policy.reconnectMs <= 0) return this.finish(code, reason);
    this.clearTimer('grace');
    this.clearTimer('flush');
    this.present.clear();
    this.replayRecent();
    this.outage = { since: performance.now(), attempts: 0, code, reason, timer: null };
    this.info?.(`signaling connection broke (${code} ${reason}): reconnecting for up to ${Math.round(this.policy.reconnectMs / 1000)} s`);
    this.scheduleAttempt();
  }

  private scheduleAttempt(): void {
    const o = this.outage;
    if (!o || this.closed) return;
    const attempt = ++o.attempts;
    const delayMs = backoffDelay(attempt, this.policy, Math.random());
    const elapsed = performance.now() - o.since;
    if (elapsed + delayMs > this.policy.reconnectMs) {
      const why = `gave up reconnecting to ${this.params.url} after ${Math.round(elapsed)} ms and ${attempt - 1} attempt(s) (last: ${o.reason})`;
      return this.finish(o.code, why, new SignalingError('closed', why));
    }
    this.events.emit('reconnecting', { attempt, delayMs, code: o.code, reason: o.reason });
    o.timer = setTimeout(() => {
      o.timer = null;
      void this.rejoin(o);
    }, delayMs);
  }

  /** One rejoin attempt: a new socket, the same join; the roster is taken over on the message chain. */
  private async rejoin(o: Outage): Promise<void> {
    let joined: ServerMessageOf<'joined'>;
    let early: unknown[];
    try {
      const opened = await openJoinedSocket(this.params);
      if (this.closed || this.outage !== o) {
        opened.ws.onclose = null;
        opened.ws.close(1000, 'bye');
        return;
      }
      this.attach(opened.ws);
      joined = opened.joined;
      early = opened.early;
    } catch (err) {
      if (this.closed || this.outage !== o) return;
      const refused = err instanceof SignalingError && err.code !== 'closed' && !(isErrorCode(err.code) && isTransientRefusal(err.code));
      if (refused) {
        // The server (or what answered as it) will not take us back: retrying would not change its mind.
        const why = `the signaling server refused the rejoin (${err.code}: ${err.message})`;
        this.info?.(why);
        return this.finish(o.code, why, err);
      }
      o.reason = err instanceof TimeoutError || err instanceof SignalingError ? err.message : String(err);
      this.scheduleAttempt();
      return;
    }
    const gen = this.generation;
    this.after(() => this.takeRoster(o, gen, joined));
    for (const data of early) this.enqueue(data);
  }

  /** After a rejoin: new members join, missing ones get their grace, then the queue drains and `reconnected` fires. */
  private async takeRoster(o: Outage, gen: number, joined: ServerMessageOf<'joined'>): Promise<void> {
    const roster: PeerSummary[] = [];
    for (const p of joined.peers) {
      const why = await memberProblem(p, this.coordinatorFingerprint);
      if (why === null) roster.push(p);
      else {
        this.log(`ignoring member ${p.peerId} of ${this.room}: ${why}`);
        this.events.emit('member-rejected', { summary: p, reason: why });
      }
    }
    if (this.closed || gen !== this.generation || this.outage !== o) return; // broke again meanwhile
    this.outage = null;
    this.present = new Set(roster.map((p) => p.peerId));
    const added = roster.filter((p) => this.keys.get(p.peerId) !== p.key);
    for (const p of added) this.addMember(p);
    const ms = performance.now() - o.since;
    this.info?.(`rejoined ${this.room} after ${Math.round(ms)} ms (${o.attempts} attempt(s)); ${this.queued} message(s) queued`);
    this.flush();
    this.events.emit('reconnected', { ms, attempts: o.attempts });
    for (const p of added) this.events.emit('peer-joined', p);
    if ([...this.peers.keys()].some((id) => !this.present.has(id))) {
      this.graceTimer = setTimeout(() => {
        this.graceTimer = null;
        this.after(() => this.graceOver(gen));
      }, this.policy.rejoinGraceMs);
    }
  }

  /** Members still missing `rejoinGraceMs` after our rejoin have left. */
  private graceOver(gen: number): void {
    if (this.closed || gen !== this.generation) return;
    for (const [peerId, role] of [...this.peers]) {
      if (this.present.has(peerId)) continue;
      const key = this.keys.get(peerId) ?? '';
      this.removeMember(peerId);
      this.events.emit('peer-left', { peerId, role, key });
    }
  }

  /** Resolves at the next rejoin; rejects if the client closes first. */
  private rejoined(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const offs = [
        this.on('reconnected', () => {
          for (const off of offs) off();
          resolve();
        }),
        this.on('close', ({ reason }) => {
          for (const off of offs) off();
          reject(new SignalingError('closed', `signaling connection closed: ${reason}`));
        }),
      ];
    });
  }

  private clearTimer(which: 'grace' | 'flush'): void {
    const t = which === 'grace' ? this.graceTimer : this.flushTimer;
    if (t !== null) clearTimeout(t);
    if (which === 'grace') this.graceTimer = null;
    else this.flushTimer = null;
  }

  private finish(code: number, reason: string, error?: SignalingError): void {
    if (this.closed) return;
    this.closed = true;
    if (this.outage?.timer) clearTimeout(this.outage.timer);
    this.outage = null;
    this.clearTimer('grace');
    this.clearTimer('flush');
    this.outbox.clear();
    this.events.emit('close', { code, reason, ...(error ? { error } : {}) });
  }
}

function isErrorCode(code: string): code is ErrorCode {
  return code !== 'closed' && code !== 'bad-server-message' && code !== 'queue-full';
}
