// One client connection: size, depth and rate limits, envelope validation, strikes, and routing within its room.
// Every rejected message gets an `error` reply; after `maxStrikes` of them the connection is closed. Control
// payloads are relayed unread: the server checks only the envelope (src/net/signaling-protocol.ts), so a new swarm
// message never touches it. Nothing a client sends can take the process down: the text is bounded in size and
// nesting depth before it is parsed, and any exception while handling a message closes that connection only.

import type { WebSocket } from 'ws';
import { parseBoundedJson } from '../src/net/bounded-json';
import { MAX_CONTROL_BYTES } from '../src/net/control-envelope';
import {
  clientMessageSchema,
  CLOSE_INTERNAL_ERROR,
  CLOSE_POLICY_VIOLATION,
  MAX_SIGNALING_DEPTH,
  type ClientMessage,
  type ErrorCode,
  type Role,
  type ServerMessage,
} from '../src/net/signaling-protocol';
import { TokenBucket } from './rate-limit';
import type { Member, Room, Rooms } from './rooms';
import type { ServerLimits } from './limits';

export interface ConnectionContext {
  rooms: Rooms;
  limits: ServerLimits;
  newPeerId(): string;
  log(msg: string): void;
}

export class Connection {
  private member: Member | null = null;
  private room: Room | null = null;
  private strikes = 0;
  private readonly bucket: TokenBucket;
  alive = true;

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: ConnectionContext,
  ) {
    this.bucket = new TokenBucket(ctx.limits.rate);
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
    if (msg.type === 'join') return this.join(msg.room, msg.peerId, msg.role);
    const member = this.member;
    const room = this.room;
    if (!member || !room) return this.reject('not-joined', `${msg.type} before join`);
    switch (msg.type) {
      case 'signal': {
        const target = room.members.get(msg.to);
        if (!target || target === member) return this.reject('unknown-peer', `no peer ${msg.to} in room ${room.id}`);
        target.send(JSON.stringify({ type: 'signal', from: member.peerId, connId: msg.connId, data: msg.data } satisfies ServerMessage));
        return;
      }
      case 'control': {
        const payloadBytes = Buffer.byteLength(JSON.stringify(msg.msg));
        if (payloadBytes > MAX_CONTROL_BYTES) return this.reject('too-large', `control payload of ${payloadBytes} bytes > ${MAX_CONTROL_BYTES}`);
        const text = JSON.stringify({ type: 'control', from: member.peerId, msg: msg.msg } satisfies ServerMessage);
        if (member.role === 'peer') {
          if (!room.coordinator) return this.reject('no-coordinator', `room ${room.id} has no coordinator`);
          if (msg.to !== undefined && msg.to !== room.coordinator.peerId) {
            return this.reject('forbidden', 'peers send control messages to the coordinator only');
          }
          room.coordinator.send(text);
          return;
        }
        if (msg.to === undefined) return this.reject('invalid', 'the coordinator must address a peer or "*"');
        if (msg.to === '*') return room.broadcast(text, member.peerId);
        const target = room.members.get(msg.to);
        if (!target || target === member) return this.reject('unknown-peer', `no peer ${msg.to} in room ${room.id}`);
        target.send(text);
        return;
      }
    }
  }

  private join(roomId: string, requested: string | undefined, role: Role): void {
    if (this.member) return this.reject('already-joined', `already in room ${this.room?.id}`);
    const existing = this.ctx.rooms.get(roomId);
    const peerId = requested ?? this.ctx.newPeerId();
    if (existing?.members.has(peerId)) return this.reject('peer-id-taken', `peer id ${peerId} is taken in ${roomId}`);
    if (role === 'coordinator' && existing?.coordinator) {
      return this.reject('coordinator-taken', `room ${roomId} already has a coordinator`);
    }
    if (existing && existing.members.size >= this.ctx.limits.maxPeersPerRoom) {
      return this.reject('room-full', `room ${roomId} is full`);
    }
    const room = this.ctx.rooms.getOrCreate(roomId);
    const member: Member = { peerId, role, send: (text) => this.ws.readyState === this.ws.OPEN && this.ws.send(text) };
    const peers = room.others(peerId).map((m) => ({ peerId: m.peerId, role: m.role }));
    this.ctx.rooms.add(room, member);
    this.member = member;
    this.room = room;
    this.send({ type: 'joined', room: roomId, peerId, role, peers });
    room.broadcast(JSON.stringify({ type: 'peer-joined', peerId, role } satisfies ServerMessage), peerId);
  }

  /** Idempotent: removes the member and tells the room. */
  leave(): void {
    const member = this.member;
    const room = this.room;
    this.member = null;
    this.room = null;
    if (!member || !room) return;
    this.ctx.rooms.remove(room, member);
    room.broadcast(JSON.stringify({ type: 'peer-left', peerId: member.peerId, role: member.role } satisfies ServerMessage), member.peerId);
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
