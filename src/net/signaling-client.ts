// Client side of the signaling protocol. Runs in the browser (native WebSocket) and in Node (pass the `ws`
// constructor from ./rtc-node.js: Node 20 has no global WebSocket). Every server message is bounded in size and
// depth, then schema-checked. Control payloads are opaque to src/net: the layer above passes a ControlCodec that
// types them (src/protocol's swarmControl); payloads it rejects are reported as 'control-rejected' and dropped.

import { parseBoundedJson } from './bounded-json';
import { checkControlPayload, opaqueControl, type ControlCodec, type ControlPayload } from './control-envelope';
import { Emitter, type Unsubscribe } from './emitter';
import {
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
  peerId?: string;
  role: Role;
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

export type SignalingEvents<C = ControlPayload> = {
  'peer-joined': PeerSummary;
  'peer-left': PeerSummary;
  signal: SignalEvent;
  control: { from: string; msg: C };
  /** A control payload the codec refused: dropped, never delivered as `control`. */
  'control-rejected': { from: string; error: string };
  error: ServerError;
  close: { code: number; reason: string };
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
  private closed = false;
  private nonce = 0;
  private readonly pongs = new Map<number, () => void>();

  private constructor(
    private readonly ws: WebSocketLike,
    readonly room: string,
    readonly peerId: string,
    readonly role: Role,
    peers: PeerSummary[],
    private readonly codec: ControlCodec<C>,
    private readonly meter: WireMeter | null,
  ) {
    for (const p of peers) this.peers.set(p.peerId, p.role);
  }

  static async connect<C = ControlPayload>(url: string, opts: SignalingConnectOptions<C>): Promise<SignalingClient<C>> {
    const Ctor = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) throw new Error('no WebSocket implementation: pass opts.WebSocket (nodeWebSocket from rtc-node.ts)');
    const ws = new Ctor(url);
    let client: SignalingClient<C> | null = null;
    const early: unknown[] = [];
    const joined = new Promise<ServerMessageOf<'joined'>>((resolve, reject) => {
      ws.onopen = () => {
        const join: ClientMessage = { type: 'join', room: opts.room, role: opts.role, ...(opts.peerId ? { peerId: opts.peerId } : {}) };
        const text = JSON.stringify(join);
        ws.send(text);
        opts.meter?.add(WIRE_LINK, utf8Length(text));
      };
      ws.onerror = () => reject(new SignalingError('closed', `cannot reach signaling server ${url}`));
      ws.onclose = (ev) => reject(new SignalingError('closed', `signaling closed before join (${ev.code} ${ev.reason})`));
      ws.onmessage = (ev) => {
        if (client) return;
        const msg = parseServerMessage(ev.data);
        if (msg?.type === 'joined') resolve(msg);
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
    // Without a codec the payloads stay opaque: C is then ControlPayload (the default type argument).
    const codec = opts.control ?? (opaqueControl as ControlCodec<unknown> as ControlCodec<C>);
    client = new SignalingClient<C>(ws, msg.room, msg.peerId, msg.role, msg.peers, codec, opts.meter ?? null);
    client.attach();
    for (const data of early) client.handle(data);
    return client;
  }

  /** Peer id of the room's coordinator, if one has joined. */
  get coordinatorId(): string | null {
    for (const [id, role] of this.peers) if (role === 'coordinator') return id;
    return null;
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
    this.ws.onmessage = (ev) => {
      // A bug in a handler must not take the connection's message loop down with it: report it and go on.
      try {
        this.handle(ev.data);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    };
    this.ws.onclose = (ev) => this.finish(ev.code, ev.reason);
    this.ws.onerror = () => undefined; // always followed by close
  }

  private handle(data: unknown): void {
    const msg = parseServerMessage(data);
    if (!msg) {
      this.events.emit('error', { code: 'malformed', message: 'unparseable message from the server', strikesLeft: 0 });
      return;
    }
    switch (msg.type) {
      case 'peer-joined':
        this.peers.set(msg.peerId, msg.role);
        this.events.emit('peer-joined', { peerId: msg.peerId, role: msg.role });
        return;
      case 'peer-left':
        this.peers.delete(msg.peerId);
        this.events.emit('peer-left', { peerId: msg.peerId, role: msg.role });
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
        return; // only expected once, during connect
    }
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.events.emit('close', { code, reason });
  }
}

function parseServerMessage(data: unknown): ServerMessage | null {
  const text = typeof data === 'string' ? data : data instanceof Uint8Array ? new TextDecoder().decode(data) : String(data);
  const json = parseBoundedJson(text, { maxChars: MAX_SERVER_MESSAGE_CHARS, maxDepth: MAX_SIGNALING_DEPTH });
  if (!json.ok) return null;
  const r = serverMessageSchema.safeParse(json.value);
  return r.success ? r.data : null;
}
