// The coordinator's control plane in the simulator: an in-memory stand-in for the signaling server's relay. What the
// coordinator sends reaches each simulated peer after that peer's one-way latency; what a peer sends reaches the
// coordinator after the same; a departed peer is announced as 'peer-left' (the server saw its socket close). Every
// message is checked against the signaling client's envelope (src/net/control-envelope.ts: 60 KiB, depth) and the
// protocol's schema (src/protocol/messages.ts), so the simulated peers speak the real control protocol, the coordinator
// reads nothing a real signaling client would not hand it, and what a real client would refuse to send is not sent.
import { Emitter, type Unsubscribe } from '../net/emitter';
import { checkControlPayload, MAX_CONTROL_BYTES } from '../net/control-envelope';
import { controlMessageSchema, type ControlMessage } from '../protocol/messages';
import type { ControlPlane } from '../coordinator/coordinator';
import type { VirtualClock } from './virtual-clock';

export interface PlaneEndpoint {
  readonly id: string;
  readonly publicKey: string;
  /** One-way latency between this peer and the coordinator's relay, ms. */
  readonly oneWayMs: number;
  /** Connected to the signaling server now. */
  online(): boolean;
  receive(msg: ControlMessage): void;
}

type PlaneEvents = { control: { from: string; msg: ControlMessage }; 'peer-left': { peerId: string } };

export class SimControlPlane implements ControlPlane {
  readonly peerId = 'c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0';
  private readonly ev = new Emitter<PlaneEvents>();
  private readonly endpoints = new Map<string, PlaneEndpoint>();
  /** Control messages delivered (a broadcast counts once per recipient), both ways. */
  messages = 0;
  /** Every message the coordinator was handed, in order (the invariants read mb-loss / mb-done from it). */
  readonly onDelivered: ((from: string, msg: ControlMessage) => void)[] = [];
  /** Every message the coordinator sends (once, whatever its recipients), when it sends it. */
  readonly onSent: ((msg: ControlMessage) => void)[] = [];

  constructor(private readonly clock: VirtualClock) {}

  add(e: PlaneEndpoint): void {
    this.endpoints.set(e.id, e);
  }

  on(event: 'control', handler: (ev: { from: string; msg: ControlMessage }) => void): Unsubscribe;
  on(event: 'peer-left', handler: (ev: { peerId: string }) => void): Unsubscribe;
  on(event: keyof PlaneEvents, handler: (ev: never) => void): Unsubscribe {
    return this.ev.on(event, handler as never);
  }

  keyOf(peerId: string): string | undefined {
    return this.endpoints.get(peerId)?.publicKey;
  }

  reachable(peerId: string): boolean {
    return this.endpoints.get(peerId)?.online() ?? false;
  }

  /** Coordinator messages the protocol's schema refuses (a real signaling client would not carry them), by why. */
  readonly refused = new Map<string, number>();
  /** CPU microseconds of that check: the simulator's, not the coordinator's (subtracted from its figure). */
  checkUs = 0;

  sendControl(msg: ControlMessage, to?: string): void {
    const c0 = process.cpuUsage();
    // The envelope first (the signaling client's own check: size, depth), then the protocol's schema.
    const envelope = checkControlPayload(msg);
    const parsed = controlMessageSchema.safeParse(msg);
    const d = process.cpuUsage(c0);
    this.checkUs += d.user + d.system;
    const why = !envelope.ok
      ? `${msg.type}: ${/ > \d+$/.test(envelope.error) ? `control payload over the ${MAX_CONTROL_BYTES}-byte cap of the signaling envelope` : envelope.error}`
      : !parsed.success
        ? `${msg.type}: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`.slice(0, 300)
        : null;
    if (why !== null) {
      this.refused.set(why, (this.refused.get(why) ?? 0) + 1);
      return;
    }
    for (const f of this.onSent) f(msg);
    const targets = to === undefined || to === '*' ? [...this.endpoints.values()].filter((e) => e.online()) : [this.endpoints.get(to)];
    const members = membersOf(msg);
    for (const e of targets) {
      if (!e?.online()) continue;
      this.messages++;
      // A membership broadcast reaches every peer in the room (counted above), but a peer not named in it does
      // nothing with it (sim-peer.ts: not a member of that epoch, step attempt or sync): no event to run. At 10,000
      // peers with ~1,000 members that is most of the events, and each would scan the member lists.
      if (members && !members.has(e.id)) continue;
      this.clock.at(e.oneWayMs, 'peers', () => {
        if (e.online()) e.receive(msg);
      });
    }
  }

  /** A peer's message to the coordinator: schema-checked now, delivered after the peer's latency. */
  fromPeer(e: PlaneEndpoint, msg: ControlMessage): void {
    const envelope = checkControlPayload(msg);
    if (!envelope.ok) throw new Error(`simulated peer sent a ${msg.type} the signaling client refuses: ${envelope.error}`);
    const parsed = controlMessageSchema.safeParse(msg);
    if (!parsed.success) throw new Error(`simulated peer sent an invalid ${msg.type}: ${parsed.error.message}`);
    this.messages++;
    this.clock.at(e.oneWayMs, 'coordinator', () => {
      for (const f of this.onDelivered) f(e.id, msg);
      this.ev.emit('control', { from: e.id, msg });
    });
  }

  /** The signaling server noticed `e` is gone (its socket closed), after its latency. */
  left(e: PlaneEndpoint): void {
    this.clock.at(e.oneWayMs, 'coordinator', () => this.ev.emit('peer-left', { peerId: e.id }));
  }
}

/** The peers a membership broadcast names (the only ones it concerns), or null for any other message. */
function membersOf(msg: ControlMessage): ReadonlySet<string> | null {
  switch (msg.type) {
    case 'swarm-members':
      return new Set(msg.stages.flat());
    case 'step-begin':
    case 'step-reduce':
    case 'sync-begin':
      return new Set(msg.members.flat());
    default:
      return null;
  }
}
