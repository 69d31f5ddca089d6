// SignedControl over an in-memory room (the real signaling server and WebRTC are tests/swarm/trust-*.test.ts): the
// real keys, signatures and codec; only the relay is a Map.
import { describe, expect, it } from 'vitest';
import { Emitter, type Unsubscribe } from '../net/emitter';
import type { SignalingEvents } from '../net/signaling-client';
import { ephemeralIdentity, type Identity } from '../net/identity';
import type { Role } from '../net/signaling-protocol';
import type { ControlMessage } from './messages';
import {
  controlSigningText,
  parseSignedEnvelope,
  SignedControl,
  signControl,
  type ControlDropReason,
  type SignedEnvelope,
  type SignedSignaling,
} from './signed-control';

type RoomEvents = SignalingEvents<SignedEnvelope>;

class Room {
  readonly members = new Map<string, FakeSignaling>();
  constructor(
    readonly name: string,
    readonly coordinatorFingerprint: string,
  ) {}
  /** What the server relays: any JSON object with a type, as the envelope codec reads it. */
  relay(from: string, payload: unknown, to?: string): void {
    const targets = [...this.members.values()].filter(
      (m) => m.peerId !== from && (to === '*' || (to === undefined ? m.role === 'coordinator' : m.peerId === to)),
    );
    for (const m of targets) {
      const parsed = parseSignedEnvelope(JSON.parse(JSON.stringify(payload)));
      if (parsed.ok) m.events.emit('control', { from, msg: parsed.value });
      else m.events.emit('control-rejected', { from, error: parsed.error });
    }
  }
}

class FakeSignaling implements SignedSignaling {
  readonly events = new Emitter<RoomEvents>();
  readonly peers = new Map<string, Role>();
  readonly coordinatorId = null;
  isOpen = true;
  get isUsable(): boolean {
    return this.isOpen;
  }
  isPresent(peerId: string): boolean {
    return this.isOpen && this.roomOf.members.has(peerId);
  }
  constructor(
    private readonly roomOf: Room,
    readonly identity: Identity,
    readonly role: Role,
  ) {
    roomOf.members.set(identity.id, this);
  }
  get peerId(): string {
    return this.identity.id;
  }
  get room(): string {
    return this.roomOf.name;
  }
  get coordinatorFingerprint(): string {
    return this.roomOf.coordinatorFingerprint;
  }
  keyOf(peerId: string): string | undefined {
    return this.roomOf.members.get(peerId)?.identity.publicKey;
  }
  on<K extends keyof RoomEvents>(event: K, handler: (ev: RoomEvents[K]) => void): Unsubscribe {
    return this.events.on(event, handler);
  }
  sendControl(msg: SignedEnvelope, to?: string): void {
    this.roomOf.relay(this.peerId, msg, to);
  }
  close(): void {
    this.isOpen = false;
  }
}

async function setup() {
  const coordId = await ephemeralIdentity();
  const room = new Room('r1', coordId.fingerprint);
  const coord = new SignedControl(new FakeSignaling(room, coordId, 'coordinator'));
  const peerId = await ephemeralIdentity();
  const peerSig = new FakeSignaling(room, peerId, 'peer');
  const peer = new SignedControl(peerSig);
  const evilId = await ephemeralIdentity();
  const evil = new FakeSignaling(room, evilId, 'peer');
  const got = { coord: [] as ControlMessage[], peer: [] as ControlMessage[] };
  const drops: ControlDropReason[] = [];
  coord.on('control', ({ msg }) => got.coord.push(msg));
  peer.on('control', ({ msg }) => got.peer.push(msg));
  peer.on('dropped', ({ reason }) => drops.push(reason));
  coord.on('dropped', ({ reason }) => drops.push(reason));
  return { room, coordId, coord, peer, peerId, peerSig, evil, evilId, got, drops };
}

const settle = () => new Promise((r) => setTimeout(r, 50));
const apply: ControlMessage = { type: 'step-apply', step: 0, attempt: 0, scale: 1, lr: 100 };

describe('SignedControl', () => {
  it('delivers signed messages both ways, in send order', async () => {
    const s = await setup();
    for (let i = 0; i < 40; i++) s.coord.sendControl({ type: 'status', state: `s${i}` }, '*');
    s.peer.sendControl({ type: 'hello', protocol: 4 });
    await s.coord.flushed();
    await s.peer.flushed();
    // The receiver verifies each signature (WebCrypto, on the thread pool): wait for all 40 rather than a fixed
    // 50 ms, which a loaded CI machine overran (33 of 40 verified).
    await expect.poll(() => s.got.peer.length + s.drops.length, { timeout: 20_000, interval: 10 }).toBeGreaterThanOrEqual(40);
    await settle();
    expect(s.got.peer.map((m) => (m.type === 'status' ? m.state : '?'))).toEqual(Array.from({ length: 40 }, (_, i) => `s${i}`));
    expect(s.got.coord).toEqual([{ type: 'hello', protocol: 4 }]);
    expect(s.drops).toEqual([]);
  });

  it('drops unsigned, mis-signed, other-room, replayed, reordered and type-mismatched messages', async () => {
    const s = await setup();
    const scope = { coordinatorFingerprint: s.coordId.fingerprint, room: 'r1' };
    const body = JSON.stringify(apply);
    // Unsigned: the old plain form.
    s.room.relay(s.coordId.id, apply, s.peerId.id);
    // Signed by another key, claiming the coordinator's id.
    s.room.relay(s.coordId.id, await signControl({ ...s.evilId, id: s.coordId.id }, scope, 5, body, 'step-apply'), s.peerId.id);
    // Signed by the coordinator for another room.
    s.room.relay(s.coordId.id, await signControl(s.coordId, { ...scope, room: 'r2' }, 6, body, 'step-apply'), s.peerId.id);
    // A member (not the coordinator) with its own valid signature.
    s.evil.sendControl(await signControl(s.evilId, scope, 7, body, 'step-apply'), s.peerId.id);
    // Reordered: seq 20 before seq 10; and 20 again (replay).
    const e20 = await signControl(s.coordId, scope, 20, JSON.stringify({ type: 'status', state: 'twenty' }), 'status');
    const e10 = await signControl(s.coordId, scope, 10, JSON.stringify({ type: 'status', state: 'ten' }), 'status');
    s.room.relay(s.coordId.id, e20, s.peerId.id);
    s.room.relay(s.coordId.id, e10, s.peerId.id);
    s.room.relay(s.coordId.id, e20, s.peerId.id);
    // Signed, but the envelope's type is not the body's.
    s.room.relay(s.coordId.id, await signControl(s.coordId, scope, 30, body, 'status'), s.peerId.id);
    // Signed, body not a control message.
    s.room.relay(s.coordId.id, await signControl(s.coordId, scope, 31, '{"type":"step-apply","lr":"x"}', 'step-apply'), s.peerId.id);
    await settle();
    expect(s.got.peer).toEqual([{ type: 'status', state: 'twenty' }]);
    // (A non-coordinator's message is dropped before verification, so the order of drops is not the send order.)
    expect([...s.drops].sort()).toEqual([
      'bad-body',
      'bad-signature',
      'bad-signature',
      'malformed',
      'not-coordinator',
      'stale-seq',
      'stale-seq',
      'type-mismatch',
    ]);
    expect(s.peer.drops['stale-seq']).toBe(2);
  });

  it('binds the signature to sender, seq and body', async () => {
    const s = await setup();
    const scope = { coordinatorFingerprint: s.coordId.fingerprint, room: 'r1' };
    const env = await signControl(s.coordId, scope, 40, JSON.stringify(apply), 'step-apply');
    s.room.relay(s.coordId.id, { ...env, seq: 41 }, s.peerId.id);
    s.room.relay(s.coordId.id, { ...env, body: JSON.stringify({ ...apply, lr: 1000 }) }, s.peerId.id);
    // The coordinator's message relayed as if a member sent it to the coordinator.
    s.room.relay(s.peerId.id, env);
    await settle();
    expect(s.got.peer).toEqual([]);
    expect(s.got.coord).toEqual([]);
    expect(s.drops).toEqual(['bad-signature', 'bad-signature', 'bad-signature']);
    expect(controlSigningText(scope, 'a', 1, 'b')).toBe(`tabswarm-control\n${s.coordId.fingerprint}/r1\na\n1\nb`);
  });

  it('refuses to send an invalid or oversized message, at once', async () => {
    const s = await setup();
    expect(() => s.peer.sendControl({ type: 'status', state: '' })).toThrow(/invalid status/);
    expect(() => s.peer.sendControl({ type: 'status', state: 'x', detail: '"'.repeat(1024) } as ControlMessage)).not.toThrow();
    expect(() =>
      s.coord.sendControl({ type: 'step-begin', step: 0, attempt: 0, owners: [0], members: Array(8).fill(Array(256).fill('a'.repeat(32))) }),
    ).toThrow(/bytes signed/);
  });
});
