// Rooms: one per training run. Members are addressed by peer id only within their room, which is what makes
// "out-of-room" messages impossible to deliver: a lookup never crosses rooms.

import type { Role } from '../src/net/signaling-protocol';

export interface Member {
  peerId: string;
  role: Role;
  send(text: string): void;
}

export class Room {
  readonly members = new Map<string, Member>();
  coordinator: Member | null = null;

  constructor(readonly id: string) {}

  others(peerId: string): Member[] {
    return [...this.members.values()].filter((m) => m.peerId !== peerId);
  }

  broadcast(text: string, except: string): void {
    for (const m of this.others(except)) m.send(text);
  }
}

export class Rooms {
  private readonly rooms = new Map<string, Room>();

  get(id: string): Room | undefined {
    return this.rooms.get(id);
  }

  getOrCreate(id: string): Room {
    let room = this.rooms.get(id);
    if (!room) {
      room = new Room(id);
      this.rooms.set(id, room);
    }
    return room;
  }

  add(room: Room, member: Member): void {
    room.members.set(member.peerId, member);
    if (member.role === 'coordinator') room.coordinator = member;
  }

  remove(room: Room, member: Member): void {
    if (room.members.get(member.peerId) !== member) return;
    room.members.delete(member.peerId);
    if (room.coordinator === member) room.coordinator = null;
    if (room.members.size === 0) this.rooms.delete(room.id);
  }

  get size(): number {
    return this.rooms.size;
  }
}
