// The coordinator's unit tests drive a real Coordinator through a fake control plane (no signaling server, no GPU):
// what it sends is recorded and handed to scripted peers, what they say is delivered as verified control messages.
import { Emitter } from '../../src/net/emitter';
import { stepOwners, type ControlMessage, type ControlOf, type MemberClaim } from '../../src/protocol/messages';
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

export interface ScriptOptions {
  /** What each stage's leader reports in grad-sumsq (default 1 for every stage). */
  sumsq?: number[];
  /** Peers that say nothing at all (vanished, or stopped: SIGSTOP); their microbatches never come back. */
  silent?: Set<string>;
  /** The loss the last stage reports for microbatch `mb` of `step` (default 2 + mb). */
  loss?: (step: number, mb: number) => number;
  /** Member claims: these peers re-announce with theirs when the coordinator asks (`reannounce`). */
  claims?: Map<string, MemberClaim>;
  /** Return true to swallow a message (the test answers it itself). */
  intercept?: (msg: ControlMessage, to?: string) => boolean;
}

/**
 * A scripted swarm: every member answers like a correct peer (ready for every membership, each owned microbatch's
 * mb-done and its last-stage loss, step traces that agree, the leaders' sums of squares, step-done for every update,
 * a pong for every ping). Returns the stage each peer was assigned.
 */
export function scriptPeers(plane: FakePlane, o: ScriptOptions = {}): { stageOf: Map<string, number> } {
  const silent = o.silent ?? new Set<string>();
  const loss = o.loss ?? ((_step: number, mb: number) => 2 + mb);
  const stageOf = new Map<string, number>();
  plane.responder = (msg, to) => {
    if (o.intercept?.(msg, to)) return;
    const say = (p: string, m: ControlMessage) => {
      if (!silent.has(p)) plane.from(p, m);
    };
    switch (msg.type) {
      case 'swarm-assign':
        if (to) stageOf.set(to, msg.stage);
        return;
      case 'ping':
        if (to) say(to, { type: 'pong', nonce: msg.nonce });
        return;
      case 'reannounce':
        for (const [p, member] of o.claims ?? []) if (!silent.has(p)) announce(plane, p, 100, { member });
        return;
      case 'swarm-members':
        for (const p of msg.stages.flat()) say(p, { type: 'swarm-ready', epoch: msg.epoch });
        return;
      case 'step-begin': {
        const { step, attempt } = msg;
        const last = msg.members[msg.members.length - 1];
        stepOwners(msg).forEach((owner, mb) => {
          if (silent.has(owner)) return; // its microbatches never come back
          say(last[mb % last.length], { type: 'mb-loss', step, attempt, mb, loss: loss(step, mb) });
          say(owner, { type: 'mb-done', step, attempt, mb });
        });
        return;
      }
      case 'step-reduce':
        // Every member's step trace (nothing sent or received here: the traces agree), then the leaders' sums.
        msg.members.forEach((m, s) =>
          m.forEach((p) =>
            say(p, { type: 'step-trace', step: msg.step, attempt: msg.attempt, stage: s, part: 0, parts: 1, backward: [], sent: [], recv: [] }),
          ),
        );
        msg.members.forEach((m, s) => say(m[0], { type: 'grad-sumsq', step: msg.step, attempt: msg.attempt, stage: s, value: o.sumsq?.[s] ?? 1 }));
        return;
      case 'step-apply':
        for (const [p, s] of stageOf) say(p, { type: 'step-done', step: msg.step, attempt: msg.attempt, stage: s, digest: `d${s}-${msg.step}` });
        return;
      default:
        return;
    }
  };
  return { stageOf };
}
