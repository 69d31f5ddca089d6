// Client side of the signaling protocol. Runs in the browser (native WebSocket) and in Node (pass the `ws`
// constructor from ./rtc-node.js: Node 20 has no global WebSocket). Every server message is bounded in size and
// depth, then schema-checked. Control payloads are opaque to src/net: the layer above passes a ControlCodec that
// types them (src/protocol's swarmControl); payloads it rejects are reported as 'control-rejected' and dropped.
//
// Identity (docs/trust.md): the client signs the server's challenge with its key; its id is derived from that key.
// It checks end to end what the server says about the room: every member's id is its key's, and the only member
// taken as coordinator is the one whose key has the room's coordinator fingerprint (others are ignored and logged).
// Server messages are handled one after the other on a promise chain, since those checks are async (WebCrypto).

import { parseBoundedJson } from './bounded-json';
import { checkControlPayload, opaqueControl, type ControlCodec, type ControlPayload } from './control-envelope';
import { Emitter, type Unsubscribe } from './emitter';
import { ephemeralIdentity, fingerprintOf, idOfFingerprint, sha256Hex, type Identity } from './identity';
import {
  joinText,
  MAX_SIGNALING_DEPTH,
  serverMessageSchema,
  type ClientMessage,
  type ErrorCode,
  type PeerSummary,
  type Role,
  type ServerMessage,
  type ServerMessageOf,
  type SignalData,
} from './signaling-protocol';
import { withTimeout } from './timers';
import { utf8Length, WIRE_CONTROL, WIRE_LINK, type WireMeter } from './wire-meter';

/** The subset of the WebSocket API used here; both the DOM WebSocket and `ws` satisfy it. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

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
  close: { code: number; reason: string };
  /** The server announced a member whose id or role does not match its key (end-to-end check): ignored. */
  'member-rejected': RejectedMember;
};

export class SignalingError extends Error {
  override name = 'SignalingError';
  constructor(
    readonly code: ErrorCode | 'closed' | 'bad-server-message',
    message: string,
  ) {
    super(message);
  }
}

const OPEN = 1;

/** What a WebRTC link needs of the signaling connection (PeerNetwork, raw-link): no control plane, so any codec. */
export interface SignalingLink {
  readonly peerId: string;
  readonly room: string;
  readonly peers: ReadonlyMap<string, Role>;
  readonly isOpen: boolean;
  /** This client's key pair (its id is peerId): signs the DTLS binding of its links. */
  readonly identity: Identity;
  /** Public key of a current room member. */
  keyOf(peerId: string): string | undefined;
  on(event: 'signal', handler: (ev: SignalEvent) => void): Unsubscribe;
  on(event: 'peer-left', handler: (ev: PeerSummary) => void): Unsubscribe;
  sendSignal(to: string, connId: string, data: SignalData): void;
  waitForPeer(peerId: string, timeoutMs: number): Promise<void>;
}

/** Largest server message the client reads (the server's own hard cap). */
const MAX_SERVER_MESSAGE_CHARS = 1024 * 1024;

export class SignalingClient<C = ControlPayload> implements SignalingLink {
  readonly events = new Emitter<SignalingEvents<C>>();
  /** Other members of the room, kept current from peer-joined / peer-left. */
  readonly peers = new Map<string, Role>();
  /** Public keys of the other members (same keys as `peers`). */
  private readonly keys = new Map<string, string>();
  private closed = false;
  private nonce = 0;
  private readonly pongs = new Map<number, () => void>();
  /** Server messages are handled in order, one at a time (the member checks are async). */
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly ws: WebSocketLike,
    readonly room: string,
    readonly peerId: string,
    readonly role: Role,
    readonly identity: Identity,
    /** Fingerprint of the room's coordinator key: the only key this client takes as coordinator. */
    readonly coordinatorFingerprint: string,
    peers: PeerSummary[],
    private readonly codec: ControlCodec<C>,
    private readonly meter: WireMeter | null,
    private readonly log: (s: string) => void,
  ) {
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
    const ws = new Ctor(url);
    let client: SignalingClient<C> | null = null;
    const early: unknown[] = [];
    const joined = new Promise<ServerMessageOf<'joined'>>((resolve, reject) => {
      let challenged = false;
      const sendJoin = async (nonce: string): Promise<void> => {
        const sig = await identity.sign(joinText(nonce, opts.room, opts.role, coordinator));
        const join: ClientMessage = {
          type: 'join',
          room: opts.room,
          role: opts.role,
          coordinator,
          key: identity.publicKey,
          sig,
          ...(opts.role === 'peer' && opts.token !== undefined ? { token: opts.token } : {}),
          ...(tokenHash !== undefined ? { tokenHash } : {}),
        };
        const text = JSON.stringify(join);
        ws.send(text);
        opts.meter?.add(WIRE_LINK, utf8Length(text));
      };
      ws.onerror = () => reject(new SignalingError('closed', `cannot reach signaling server ${url}`));
      ws.onclose = (ev) => reject(new SignalingError('closed', `signaling closed before join (${ev.code} ${ev.reason})`));
      ws.onmessage = (ev) => {
        if (client) return;
        const msg = parseServerMessage(ev.data);
        if (msg?.type === 'challenge') {
          if (challenged) return;
          challenged = true;
          sendJoin(msg.nonce).catch((err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
        } else if (msg?.type === 'joined') resolve(msg);
        else if (msg?.type === 'error') reject(new SignalingError(msg.code, msg.message));
        else early.push(ev.data); // e.g. a peer-joined racing our own joined reply: replayed below
      };
    });
    let msg: ServerMessageOf<'joined'>;
    try {
      msg = await withTimeout(joined, opts.timeoutMs ?? 10_000, 'joining the signaling room');
    } catch (err) {
      ws.onclose = null;
      ws.onerror = null;
      ws.close();
      throw err;
    }
    const fail = (why: string): never => {
      ws.onclose = null;
      ws.onerror = null;
      ws.close();
      throw new SignalingError('bad-server-message', why);
    };
    if (msg.coordinator !== coordinator || msg.peerId !== identity.id || msg.room !== opts.room || msg.role !== opts.role) {
      fail('the server answered the join for another room, id or role');
    }
    const peers: PeerSummary[] = [];
    for (const p of msg.peers) {
      const why = await memberProblem(p, coordinator);
      if (why === null) peers.push(p);
      else log(`ignoring member ${p.peerId} of ${opts.room}: ${why}`);
    }
    // Without a codec the payloads stay opaque: C is then ControlPayload (the default type argument).
    const codec = opts.control ?? (opaqueControl as ControlCodec<unknown> as ControlCodec<C>);
    client = new SignalingClient<C>(ws, msg.room, msg.peerId, msg.role, identity, coordinator, peers, codec, opts.meter ?? null, log);
    client.attach();
    for (const data of early) client.enqueue(data);
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

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === OPEN;
  }

  on<K extends keyof SignalingEvents<C>>(event: K, handler: (payload: SignalingEvents<C>[K]) => void): Unsubscribe {
    return this.events.on(event, handler);
  }

  sendSignal(to: string, connId: string, data: SignalData): void {
    this.send({ type: 'signal', to, connId, data });
  }

  /** Peers: to the coordinator (omit `to`). Coordinator: to a peer id or '*' for the whole room. */
  /** Throws if `msg` fails the envelope (size, depth, shape) or the codec. */
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

  /** Round trip to the server, ms. */
  async ping(timeoutMs = 5000): Promise<number> {
    const nonce = ++this.nonce;
    const t0 = performance.now();
    const pong = new Promise<void>((resolve) => this.pongs.set(nonce, resolve));
    this.send({ type: 'ping', nonce });
    try {
      await withTimeout(pong, timeoutMs, 'signaling ping');
    } finally {
      this.pongs.delete(nonce);
    }
    return performance.now() - t0;
  }

  /** Raw send for tests of the server's validation: bypasses the typed API. */
  sendRaw(text: string): void {
    if (!this.isOpen) throw new SignalingError('closed', 'signaling connection is closed');
    this.ws.send(text);
  }

  close(): void {
    if (this.closed) return;
    this.ws.close(1000, 'bye');
    this.finish(1000, 'closed locally');
  }

  private send(msg: ClientMessage): void {
    if (!this.isOpen) throw new SignalingError('closed', 'signaling connection is closed');
    const text = JSON.stringify(msg);
    this.ws.send(text);
    this.meter?.add(msg.type === 'control' ? WIRE_CONTROL : WIRE_LINK, utf8Length(text));
  }

  private attach(): void {
    this.ws.onmessage = (ev) => this.enqueue(ev.data);
    this.ws.onclose = (ev) => this.finish(ev.code, ev.reason);
    this.ws.onerror = () => undefined; // always followed by close
  }

  /** Handles `data` after every message received before it. */
  private enqueue(data: unknown): void {
    this.chain = this.chain
      .then(() => this.handle(data))
      .catch((err: unknown) => {
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
        this.addMember(summary);
        this.events.emit('peer-joined', summary);
        return;
      }
      case 'peer-left':
        // Only the member we know under that id and key leaves (a rejected impostor's departure changes nothing).
        if (this.keys.get(msg.peerId) !== msg.key) return;
        this.peers.delete(msg.peerId);
        this.keys.delete(msg.peerId);
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
        return; // only expected once, during connect
    }
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.events.emit('close', { code, reason });
  }
}

const fingerprints = new Map<string, Promise<string | null>>();

/** Why the server's summary of a member cannot be trusted (its id is not its key's, or a role its key may not have); null if fine. */
async function memberProblem(p: PeerSummary, coordinator: string): Promise<string | null> {
  let fp = fingerprints.get(p.key);
  if (!fp) {
    fp = fingerprintOf(p.key);
    if (fingerprints.size > 4096) fingerprints.clear();
    fingerprints.set(p.key, fp);
  }
  const fingerprint = await fp;
  if (fingerprint === null) return 'its key is not a P-256 public key';
  if (idOfFingerprint(fingerprint) !== p.peerId) return 'its id is not derived from its key';
  if (p.role === 'coordinator' && fingerprint !== coordinator) return "its key is not the room's coordinator key";
  if (p.role === 'peer' && fingerprint === coordinator) return "it holds the coordinator's key but joined as a peer";
  return null;
}

function parseServerMessage(data: unknown): ServerMessage | null {
  const text = typeof data === 'string' ? data : data instanceof Uint8Array ? new TextDecoder().decode(data) : String(data);
  const json = parseBoundedJson(text, { maxChars: MAX_SERVER_MESSAGE_CHARS, maxDepth: MAX_SIGNALING_DEPTH });
  if (!json.ok) return null;
  const r = serverMessageSchema.safeParse(json.value);
  return r.success ? r.data : null;
}
