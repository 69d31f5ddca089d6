// The coordinator's unit tests drive a real Coordinator through a fake control plane (no signaling server, no GPU):
// what it sends is recorded and handed to scripted peers, what they say is delivered as verified control messages.
import { Emitter } from '../../src/net/emitter';
import type { ControlMessage, ControlOf } from '../../src/protocol/messages';
import { DEFAULT_OPTIMIZER } from '../../src/model/stage';
import type { ControlPlane } from '../../src/coordinator/coordinator';
import { parseRunConfig, type RunConfig } from '../../src/protocol/run-config';
import { evenStages } from '../../src/coordinator/run-builder';
import { PROTOCOL_VERSION } from '../../src/protocol/version';

export class FakePlane implements ControlPlane {
  readonly peerId = 'coord';
  readonly ev = new Emitter<{ control: { from: string; msg: ControlMessage }; 'peer-left': { peerId: string } }>();
  readonly sent: { msg: ControlMessage; to?: string }[] = [];
  /** Scripted peers: called (asynchronously) with every message the coordinator sends. */
  responder: (msg: ControlMessage, to?: string) => void = () => undefined;
  /** Scripted members have no keys (these runs aggregate by sum: nothing signed to check). */
  keyOf(): string | undefined {
    return undefined;
  }
  on(event: 'control' | 'peer-left', handler: (ev: never) => void) {
    return this.ev.on(event, handler as never);
  }
  sendControl(msg: ControlMessage, to?: string): void {
    this.sent.push({ msg, to });
    queueMicrotask(() => this.responder(msg, to));
  }
  /** A message from `peer` to the coordinator. */
  from(peer: string, msg: ControlMessage): void {
    this.ev.emit('control', { from: peer, msg });
  }
  leave(peerId: string): void {
    this.ev.emit('peer-left', { peerId });
  }
  /** What the coordinator sent of `type`, in order. */
  ofType<T extends ControlMessage['type']>(type: T): ControlOf<T>[] {
    return this.sentOf(type).map((s) => s.msg);
  }
  /** The same, with each message's addressee. */
  sentOf<T extends ControlMessage['type']>(type: T): { msg: ControlOf<T>; to?: string }[] {
    return this.sent.filter((s) => s.msg.type === type) as { msg: ControlOf<T>; to?: string }[];
  }
}

/** The join handshake: `hello` with the protocol version, then `peer-info` (with `info`'s extra fields). */
export function announce(
  plane: { from(peer: string, msg: ControlMessage): void },
  peer: string,
  throughput = 100,
  info: Partial<ControlOf<'peer-info'>> = {},
): void {
  plane.from(peer, { type: 'hello', protocol: PROTOCOL_VERSION });
  plane.from(peer, { type: 'peer-info', platform: 'node', gpu: true, throughput, ...info });
}

/** A tiny run for the coordinator's unit tests: 4 layers in 2 stages, M = 4 microbatches, 3 steps (override any). */
export function unitRun(over: Partial<RunConfig> = {}): RunConfig {
  const schedule = { lr: 1e-3, minLr: 1e-4, warmup: 1, decaySteps: 4 };
  return parseRunConfig({
    runId: 'unit',
    model: { n_layer: 4, n_head: 2, n_embd: 8, vocab_size: 10, block_size: 8 },
    stages: evenStages(4, 2),
    B: 1,
    T: 8,
    M: 4,
    steps: 3,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: schedule.lr, gradClip: 1 },
    seed: 1,
    ...over,
  });
}
