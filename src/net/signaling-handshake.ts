// Opening one signaling connection: the WebSocket, the server's challenge, the signed join and the server's `joined`
// answer, checked against what was asked. SignalingClient.connect does it once; a client whose connection broke
// does it again with the same key, room, role, coordinator fingerprint and token (docs/resilience.md).

import { parseBoundedJson } from './bounded-json';
import { fingerprintOf, idOfFingerprint, type Identity } from './identity';
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
} from './signaling-protocol';
import { withTimeout } from './timers';
import { utf8Length, WIRE_LINK, type WireMeter } from './wire-meter';

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

export class SignalingError extends Error {
  override name = 'SignalingError';
  constructor(
    /** 'closed': the connection is gone (or could not be made); 'queue-full': too much waits for a reconnect. */
    readonly code: ErrorCode | 'closed' | 'bad-server-message' | 'queue-full',
    message: string,
  ) {
    super(message);
  }
}

/** What a join asks for; the same on every rejoin. */
export interface JoinParams {
  url: string;
  room: string;
  role: Role;
  /** Fingerprint of the room's coordinator key. */
  coordinator: string;
  identity: Identity;
  token?: string;
  tokenHash?: string;
  WebSocket: WebSocketConstructor;
  timeoutMs: number;
  meter: WireMeter | null;
}

export interface JoinedSocket {
  ws: WebSocketLike;
  joined: ServerMessageOf<'joined'>;
  /** Messages that arrived before `joined` was handled (e.g. a peer-joined racing it): to be handled next, in order. */
  early: unknown[];
}

/** Largest server message the client reads (the server's own hard cap). */
const MAX_SERVER_MESSAGE_CHARS = 1024 * 1024;

/**
 * Connects and joins. Rejects with a SignalingError (the server's error code for a refused join, 'closed' when the
 * connection failed) or a TimeoutError; the socket is closed then. On success its handlers are the caller's to set.
 */
export async function openJoinedSocket(p: JoinParams): Promise<JoinedSocket> {
  const ws = new p.WebSocket(p.url);
  const early: unknown[] = [];
  /** Once `joined` came, every later message waits in `early` until the caller takes the socket over. */
  let answered = false;
  const joined = new Promise<ServerMessageOf<'joined'>>((resolve, reject) => {
    let challenged = false;
    const sendJoin = async (nonce: string): Promise<void> => {
      const sig = await p.identity.sign(joinText(nonce, p.room, p.role, p.coordinator));
      const join: ClientMessage = {
        type: 'join',
        room: p.room,
        role: p.role,
        coordinator: p.coordinator,
        key: p.identity.publicKey,
        sig,
        ...(p.role === 'peer' && p.token !== undefined ? { token: p.token } : {}),
        ...(p.tokenHash !== undefined ? { tokenHash: p.tokenHash } : {}),
      };
      const text = JSON.stringify(join);
      ws.send(text);
      p.meter?.add(WIRE_LINK, utf8Length(text));
    };
    ws.onerror = () => reject(new SignalingError('closed', `cannot reach signaling server ${p.url}`));
    ws.onclose = (ev) => reject(new SignalingError('closed', `signaling closed before join (${ev.code} ${ev.reason})`));
    ws.onmessage = (ev) => {
      if (answered) {
        early.push(ev.data);
        return;
      }
      const msg = parseServerMessage(ev.data);
      if (msg?.type === 'challenge') {
        if (challenged) return;
        challenged = true;
        sendJoin(msg.nonce).catch((err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
      } else if (msg?.type === 'joined') {
        answered = true;
        resolve(msg);
      } else if (msg?.type === 'error') reject(new SignalingError(msg.code, msg.message));
      else early.push(ev.data); // e.g. a peer-joined racing our own joined reply: replayed by the caller
    };
  });
  const drop = (): void => {
    ws.onclose = null;
    // Not null: `ws` reports closing a socket that is still connecting (a timed-out attempt) as an 'error' event,
    // and an 'error' without a listener would be thrown.
    ws.onerror = () => undefined;
    ws.onmessage = null;
    ws.close();
  };
  let msg: ServerMessageOf<'joined'>;
  try {
    msg = await withTimeout(joined, p.timeoutMs, 'joining the signaling room');
  } catch (err) {
    drop();
    throw err;
  }
  if (msg.coordinator !== p.coordinator || msg.peerId !== p.identity.id || msg.room !== p.room || msg.role !== p.role) {
    drop();
    throw new SignalingError('bad-server-message', 'the server answered the join for another room, id or role');
  }
  return { ws, joined: msg, early };
}

const fingerprints = new Map<string, Promise<string | null>>();

/** Why the server's summary of a member cannot be trusted (its id is not its key's, or a role its key may not have); null if fine. */
export async function memberProblem(p: PeerSummary, coordinator: string): Promise<string | null> {
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

export function parseServerMessage(data: unknown): ServerMessage | null {
  const text = typeof data === 'string' ? data : data instanceof Uint8Array ? new TextDecoder().decode(data) : String(data);
  const json = parseBoundedJson(text, { maxChars: MAX_SERVER_MESSAGE_CHARS, maxDepth: MAX_SIGNALING_DEPTH });
  if (!json.ok) return null;
  const r = serverMessageSchema.safeParse(json.value);
  return r.success ? r.data : null;
}
