// Rooms: one per training run, keyed by (coordinator fingerprint, name), so a room is bound to its coordinator's key
// from the moment it exists: nobody can squat a name (a "demo" bound to another key is another room). Members are
// addressed by peer id only within their room, which is what makes "out-of-room" messages impossible to deliver: a
// lookup never crosses rooms.

import type { PeerSummary, Role } from '../src/net/signaling-protocol';

export interface Member {
  peerId: string;
  role: Role;
  /** base64url raw public key; peerId is its id. */
  key: string;
  /** Hex SHA-256 of the join token this member presented, if any. */
  tokenHash: string | null;
  send(text: string): void;
  /** Closes this member's connection (it is then removed by its own leave()). */
  close(code: number, reason: string): void;
}

/** A room whose coordinator is connected now, as `tabswarm serve` lists it (GET /api/config `rooms`). */
export interface LiveRoomInfo {
  room: string;
  /** The coordinator key's fingerprint. */
  coordinator: string;
  /** Members other than the coordinator. */
  peers: number;
  /** True when the room asks peers for a join token. */
  token: boolean;
}

export function summaryOf(m: Member): PeerSummary {
  return { peerId: m.peerId, role: m.role, key: m.key };
}

export class Room {
  readonly members = new Map<string, Member>();
  coordinator: Member | null = null;
  /** Set by the coordinator's join: peers must present the token whose hash this is. Kept while the room exists. */
  tokenHash: string | null = null;

  constructor(
    readonly name: string,
    /** Fingerprint of the only key that may join as this room's coordinator. */
    readonly coordinatorFingerprint: string,
  ) {}

  get id(): string {
    return roomKey(this.coordinatorFingerprint, this.name);
  }

  others(peerId: string): Member[] {
    return [...this.members.values()].filter((m) => m.peerId !== peerId);
  }

  broadcast(text: string, except: string): void {
    for (const m of this.others(except)) m.send(text);
  }
}

function roomKey(coordinator: string, name: string): string {
  return `${coordinator}/${name}`;
}

export class Rooms {
  private readonly rooms = new Map<string, Room>();

  get(coordinator: string, name: string): Room | undefined {
    return this.rooms.get(roomKey(coordinator, name));
  }

  getOrCreate(coordinator: string, name: string): Room {
    let room = this.get(coordinator, name);
    if (!room) {
      room = new Room(name, coordinator);
      this.rooms.set(room.id, room);
    }
    return room;
  }

  add(room: Room, member: Member): void {
    room.members.set(member.peerId, member);
    if (member.role === 'coordinator') room.coordinator = member;
  }

  /** False if `member` is not (any more) the room's member under its id, e.g. replaced by a newer connection. */
  remove(room: Room, member: Member): boolean {
    if (room.members.get(member.peerId) !== member) return false;
    room.members.delete(member.peerId);
    if (room.coordinator === member) room.coordinator = null;
    if (room.members.size === 0) this.rooms.delete(room.id);
    return true;
  }

  get size(): number {
    return this.rooms.size;
  }

  /** The rooms whose coordinator is connected, newest (last created) first. */
  live(): LiveRoomInfo[] {
    const out: LiveRoomInfo[] = [];
    for (const r of this.rooms.values()) {
      if (r.coordinator === null) continue;
      out.push({ room: r.name, coordinator: r.coordinatorFingerprint, peers: r.members.size - 1, token: r.tokenHash !== null });
    }
    return out.reverse();
  }
}
