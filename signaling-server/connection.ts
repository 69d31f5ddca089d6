// One client connection: size, depth and rate limits, envelope validation, strikes, proof of key at join, and
// routing within its room. Every rejected message gets an `error` reply; after `maxStrikes` of them the connection
// is closed. Control payloads are relayed unread: the server checks only the envelope (src/net/signaling-protocol.ts),
// so a new swarm message never touches it. Nothing a client sends can take the process down: the text is bounded in
// size and nesting depth before it is parsed, and any exception while handling a message closes that connection only.
//
// Join (docs/trust.md): the server sends a random nonce on connect; the join signs it with the client's key, and the
// member id is derived from that key. Verifying is async (WebCrypto): while it runs, the client's later messages are
// queued (bounded) and handled after it, in order, and the number of joins verified at once is bounded server-wide.

import type { WebSocket } from 'ws';
import { parseBoundedJson } from '../src/net/bounded-json';
import { MAX_CONTROL_BYTES } from '../src/net/control-envelope';
import { fingerprintOf, idOfFingerprint, sha256Hex, toBase64Url, verifySignature } from '../src/net/identity';
import {
  clientMessageSchema,
  CLOSE_INTERNAL_ERROR,
  CLOSE_NO_TOKEN,
  CLOSE_POLICY_VIOLATION,
  CLOSE_REPLACED,
  joinText,
  MAX_SIGNALING_DEPTH,
  type ClientMessage,
  type ErrorCode,
  type ServerMessage,
} from '../src/net/signaling-protocol';
import { TokenBucket } from './rate-limit';
import { summaryOf, type Member, type Room, type Rooms } from './rooms';
import type { ServerLimits } from './limits';

export interface ConnectionContext {
  rooms: Rooms;
  limits: ServerLimits;
  /** Joins being verified right now, server-wide (shared by every connection). */
  pending: { count: number };
  /**
   * Set when the server shuts down: its members did not leave, the server did, so no `peer-left` is broadcast (the
   * clients rejoin the restarted server and keep their peers through the grace, docs/resilience.md).
   */
  shutdown?: { value: boolean };
  log(msg: string): void;
}

type JoinMessage = Extract<ClientMessage, { type: 'join' }>;
type JoinVerdict = { ok: true; fingerprint: string; tokenHash: string | null } | { ok: false; code: ErrorCode; message: string };

export class Connection {
  private member: Member | null = null;
  private room: Room | null = null;
  private strikes = 0;
  private readonly bucket: TokenBucket;
  /** The challenge this connection's join must sign. */
  private readonly nonce: string;
  /** Set while a join is verified; messages that arrive meanwhile wait in `queued`. */
  private joining = false;
  private readonly queued: Buffer[] = [];
  private gone = false;
  alive = true;

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: ConnectionContext,
  ) {
    this.bucket = new TokenBucket(ctx.limits.rate);
    this.nonce = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
    ws.on('message', (data, isBinary) => {
      try {
        this.onMessage(data, isBinary);
      } catch (err) {
        this.fail(err);
      }
    });
    ws.on('close', () => this.guard(() => this.leave()));
    // ws reports protocol violations (invalid UTF-8, bad frames, over maxPayload) here and closes the socket itself.
    ws.on('error', () => this.guard(() => this.leave()));
    ws.on('pong', () => {
      this.alive = true;
    });
    this.send({ type: 'challenge', nonce: this.nonce });
  }

  /** An exception while handling this client's input: this connection goes, the server stays. */
  private fail(err: unknown): void {
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.ctx.log(`closing ${this.peerId ?? 'unjoined client'}: internal error (${what.slice(0, 200)})`);
    this.guard(() => {
      this.ws.close(CLOSE_INTERNAL_ERROR, 'internal error');
      this.leave();
    });
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.ctx.log(`ignored error while closing a connection: ${String(err).slice(0, 200)}`);
    }
  }

  get peerId(): string | null {
    return this.member?.peerId ?? null;
  }

  private send(msg: ServerMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private reject(code: ErrorCode, message: string): void {
    this.strikes++;
    const strikesLeft = Math.max(0, this.ctx.limits.maxStrikes - this.strikes);
    this.send({ type: 'error', code, message, strikesLeft });
    if (strikesLeft === 0) {
      this.ctx.log(`closing ${this.peerId ?? 'unjoined client'}: too many bad messages (last: ${code})`);
      this.ws.close(CLOSE_POLICY_VIOLATION, `too many bad messages (last: ${code})`);
      this.leave();
    }
  }

  private onMessage(data: unknown, isBinary: boolean): void {
    if (!this.bucket.take()) return this.reject('rate-limited', 'too many messages');
    const bytes = toBuffer(data);
    if (bytes.byteLength > this.ctx.limits.maxMessageBytes) {
      return this.reject('too-large', `message of ${bytes.byteLength} bytes > ${this.ctx.limits.maxMessageBytes}`);
    }
    if (isBinary) return this.reject('malformed', 'binary messages are not accepted');
    if (this.joining) {
      // Handled after the join, in order: a signal or control message never overtakes the join it follows.
      if (this.queued.length >= this.ctx.limits.maxQueuedWhileJoining)
        return this.reject('rate-limited', 'too many messages while the join is verified');
      this.queued.push(bytes);
      return;
    }
    this.handleText(bytes);
  }

  private handleText(bytes: Buffer): void {
    // Bounded before parsing: no recursive walk (zod, stringify) ever sees deeper nesting than this.
    const bounded = parseBoundedJson(bytes.toString('utf8'), { maxChars: this.ctx.limits.maxMessageBytes, maxDepth: MAX_SIGNALING_DEPTH });
    if (!bounded.ok) {
      const code = bounded.reason === 'not-json' ? 'malformed' : bounded.reason;
      return this.reject(code, bounded.detail);
    }
    const json = bounded.value;
    const parsed = clientMessageSchema.safeParse(json);
    if (!parsed.success) {
      const known = typeof json === 'object' && json !== null && 'type' in json;
      const typeOk = known && ['join', 'signal', 'control', 'ping'].includes(String((json as { type: unknown }).type));
      return this.reject(typeOk ? 'invalid' : 'malformed', summarize(parsed.error.issues));
    }
    this.dispatch(parsed.data);
  }

  private dispatch(msg: ClientMessage): void {
    if (msg.type === 'ping') return this.send({ type: 'pong', nonce: msg.nonce });
    if (msg.type === 'join') return this.join(msg);
    const member = this.member;
    const room = this.room;
    if (!member || !room) return this.reject('not-joined', `${msg.type} before join`);
    switch (msg.type) {
      case 'signal': {
        const target = room.members.get(msg.to);
        if (!target || target === member) return this.reject('unknown-peer', `no peer ${msg.to} in room ${room.name}`);
        target.send(JSON.stringify({ type: 'signal', from: member.peerId, connId: msg.connId, data: msg.data } satisfies ServerMessage));
        return;
      }
      case 'control': {
        const payloadBytes = Buffer.byteLength(JSON.stringify(msg.msg));
        if (payloadBytes > MAX_CONTROL_BYTES) return this.reject('too-large', `control payload of ${payloadBytes} bytes > ${MAX_CONTROL_BYTES}`);
        const text = JSON.stringify({ type: 'control', from: member.peerId, msg: msg.msg } satisfies ServerMessage);
        if (member.role === 'peer') {
          if (!room.coordinator) return this.reject('no-coordinator', `room ${room.name} has no coordinator`);
          if (msg.to !== undefined && msg.to !== room.coordinator.peerId) {
            return this.reject('forbidden', 'peers send control messages to the coordinator only');
          }
          room.coordinator.send(text);
          return;
        }
        if (msg.to === undefined) return this.reject('invalid', 'the coordinator must address a peer or "*"');
        if (msg.to === '*') return room.broadcast(text, member.peerId);
        const target = room.members.get(msg.to);
        if (!target || target === member) return this.reject('unknown-peer', `no peer ${msg.to} in room ${room.name}`);
        target.send(text);
        return;
      }
    }
  }

  private join(msg: JoinMessage): void {
    if (this.member) return this.reject('already-joined', `already in room ${this.room?.name}`);
    if (msg.role === 'peer' && msg.tokenHash !== undefined) return this.reject('invalid', 'only the coordinator sets a token hash');
    if (this.ctx.pending.count >= this.ctx.limits.maxPendingJoins) return this.reject('busy', 'too many joins being verified: retry');
    this.ctx.pending.count++;
    this.joining = true;
    this.verifyJoin(msg)
      .then((verdict) => {
        if (this.gone) return;
        if (!verdict.ok) return this.reject(verdict.code, verdict.message);
        this.admit(msg, verdict.fingerprint, verdict.tokenHash);
      })
      .catch((err: unknown) => this.fail(err))
      .finally(() => {
        this.ctx.pending.count--;
        this.joining = false;
        this.drain();
      });
  }

  /** The messages that waited for the join, in order, until one of them starts another join. */
  private drain(): void {
    while (!this.joining && !this.gone && this.queued.length > 0) {
      const bytes = this.queued.shift();
      if (!bytes) break;
      try {
        this.handleText(bytes);
      } catch (err) {
        this.fail(err);
      }
    }
  }

  private async verifyJoin(msg: JoinMessage): Promise<JoinVerdict> {
    const fingerprint = await fingerprintOf(msg.key);
    if (fingerprint === null) return { ok: false, code: 'bad-signature', message: 'key is not a P-256 public key' };
    if (!(await verifySignature(msg.key, joinText(this.nonce, msg.room, msg.role, msg.coordinator), msg.sig))) {
      return { ok: false, code: 'bad-signature', message: "sig is not the key's signature of this connection's challenge" };
    }
    return { ok: true, fingerprint, tokenHash: msg.token === undefined ? null : await sha256Hex(msg.token) };
  }

  /** Synchronous, after the proof of key: no other join can interleave with these checks and updates. */
  private admit(msg: JoinMessage, fingerprint: string, tokenHash: string | null): void {
    const { rooms, limits } = this.ctx;
    if (msg.role === 'coordinator' && fingerprint !== msg.coordinator) {
      return this.reject('not-coordinator', `room ${msg.room} is bound to coordinator ${msg.coordinator.slice(0, 16)}..., not to this key`);
    }
    if (msg.role === 'peer' && fingerprint === msg.coordinator) return this.reject('forbidden', "the room's coordinator key joins as coordinator");
    const existing = rooms.get(msg.coordinator, msg.room);
    if (msg.role === 'peer' && existing?.tokenHash && tokenHash !== existing.tokenHash) {
      return this.reject('bad-token', `room ${msg.room} requires a join token; ${tokenHash ? 'this one is wrong' : 'none was given'}`);
    }
    const peerId = idOfFingerprint(fingerprint);
    const old = existing?.members.get(peerId);
    if (existing && existing.members.size - (old ? 1 : 0) >= limits.maxPeersPerRoom) return this.reject('room-full', `room ${msg.room} is full`);
    // The same key again (a reloaded tab): the old connection goes, announced as left, before the new one joins.
    old?.close(CLOSE_REPLACED, 'replaced by a new connection with the same key');
    const room = rooms.getOrCreate(msg.coordinator, msg.room);
    if (msg.role === 'coordinator') {
      room.tokenHash = msg.tokenHash ?? null;
      const required = room.tokenHash;
      if (required) {
        for (const m of [...room.members.values()]) {
          if (m.tokenHash === required) continue;
          m.send(
            JSON.stringify({
              type: 'error',
              code: 'bad-token',
              message: 'the coordinator requires a join token',
              strikesLeft: 0,
            } satisfies ServerMessage),
          );
          m.close(CLOSE_NO_TOKEN, 'the coordinator requires a join token');
        }
      }
    }
    const member: Member = {
      peerId,
      role: msg.role,
      key: msg.key,
      tokenHash,
      send: (text) => this.ws.readyState === this.ws.OPEN && this.ws.send(text),
      close: (code, reason) => {
        this.ctx.log(`closing ${peerId}: ${reason}`);
        this.guard(() => this.ws.close(code, reason));
        this.leave();
      },
    };
    const peers = room.others(peerId).map(summaryOf);
    rooms.add(room, member);
    this.member = member;
    this.room = room;
    this.send({ type: 'joined', room: msg.room, coordinator: msg.coordinator, peerId, role: msg.role, peers });
    room.broadcast(JSON.stringify({ type: 'peer-joined', ...summaryOf(member) } satisfies ServerMessage), peerId);
  }

  /** Idempotent: removes the member and tells the room. */
  leave(): void {
    this.gone = this.gone || this.ws.readyState !== this.ws.OPEN;
    const member = this.member;
    const room = this.room;
    this.member = null;
    this.room = null;
    if (!member || !room) return;
    if (!this.ctx.rooms.remove(room, member)) return;
    if (this.ctx.shutdown?.value) return;
    room.broadcast(JSON.stringify({ type: 'peer-left', ...summaryOf(member) } satisfies ServerMessage), member.peerId);
  }

  terminate(): void {
    this.leave();
    this.ws.terminate();
  }

  ping(): void {
    this.ws.ping();
  }
}

function toBuffer(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data as Buffer[]);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(String(data));
}

function summarize(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
