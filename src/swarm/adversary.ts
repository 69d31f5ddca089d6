// Reproducible adversaries (docs/trust.md "Adversaries"), for tests and demos only: a peer that is a normal SwarmPeer
// except that what it contributes is corrupted. The real StageCompute does every computation; the wrapper changes
// what leaves it:
//   nan, scale:K, signflip, random, stale -> its stage gradient as read back for the reduce (readFlat('grads')
//       between zeroGrads and the write-back of the reduced gradient): all NaN, x K, x -1, a random vector of the
//       same norm, or the previous step's honest gradient. Repeated reads in one attempt return the same vector.
//   bad-activations -> the activations it sends on are valid codec payloads of wrong values: a first stage runs its
//       forward over the microbatch's tokens reversed, a middle stage sends the payload of its previous microbatch.
//   forge-reports -> control messages: on every step-begin it claims mb-done for the microbatches it does not own,
//       mb-loss 0.001 for every microbatch, and grad-sumsq ~0 for another stage; its own mb-loss reports say 0.001.
//   frame-robust -> computes honestly, but its grad-sumsq.robust report names a wrong digest for every other rank
//       (robust aggregation: it tries to frame honest senders as equivocators; it cannot sign for them).
import { mulberry32 } from '../model/init';
import { nameHash } from '../model/outer-optimizer';
import { norm } from './aggregate';
import {
  DelegatingCompute,
  wrapStages,
  type ComputeBackend,
  type FlatRange,
  type FlatWhich,
  type MicrobatchKey,
  type StageCompute,
  type StageInput,
} from '../model/stage-compute';
import { stepOwners, type ControlMessage } from '../protocol/messages';

export const ATTACK_MODES = ['nan', 'scale:K', 'signflip', 'random', 'stale', 'bad-activations', 'forge-reports', 'frame-robust'] as const;

export type AttackSpec =
  | { mode: 'nan' }
  | { mode: 'scale'; factor: number }
  | { mode: 'signflip' }
  | { mode: 'random' }
  | { mode: 'stale' }
  | { mode: 'bad-activations' }
  | { mode: 'forge-reports' }
  | { mode: 'frame-robust' };

export type GradientAttack = Extract<AttackSpec, { mode: 'nan' | 'scale' | 'signflip' | 'random' | 'stale' }>;

export class AttackSpecError extends Error {
  override name = 'AttackSpecError';
}

/** `nan`, `scale:-1000`, `signflip`, `random`, `stale`, `bad-activations`, `forge-reports`, `frame-robust`; else throws. */
export function parseAttack(text: string): AttackSpec {
  const t = text.trim();
  const modes = ATTACK_MODES.join(', ');
  if (t.startsWith('scale')) {
    const m = /^scale:(.+)$/.exec(t);
    const k = m ? Number(m[1]) : Number.NaN;
    if (!m || m[1].trim() === '' || !Number.isFinite(k)) throw new AttackSpecError(`attack "${text}": scale needs a finite factor, e.g. scale:-1000`);
    if (k === 1) throw new AttackSpecError(`attack "${text}": scale:1 is the honest gradient, not an attack`);
    return { mode: 'scale', factor: k };
  }
  switch (t) {
    case 'nan':
    case 'signflip':
    case 'random':
    case 'stale':
    case 'bad-activations':
    case 'forge-reports':
    case 'frame-robust':
      return { mode: t };
    default:
      throw new AttackSpecError(`unknown attack "${text}" (one of ${modes})`);
  }
}

export function formatAttack(a: AttackSpec): string {
  return a.mode === 'scale' ? `scale:${a.factor}` : a.mode;
}

export function isGradientAttack(a: AttackSpec): a is GradientAttack {
  return a.mode === 'nan' || a.mode === 'scale' || a.mode === 'signflip' || a.mode === 'random' || a.mode === 'stale';
}

/** A stable 32-bit seed from a peer id (each adversary its own stream): FNV-1a, as parameter names are hashed. */
export function seedOfId(id: string): number {
  return nameHash(id);
}

/**
 * The gradient an adversary contributes instead of `honest` (a fresh array). `previous`: its honest gradient of the
 * previous attempt (stale; none yet: the honest one, there is nothing older to send). `rand`: random mode's stream.
 */
export function corruptGradient(a: GradientAttack, honest: Float32Array, previous: Float32Array | null, rand: () => number): Float32Array {
  switch (a.mode) {
    case 'nan':
      return new Float32Array(honest.length).fill(Number.NaN);
    case 'scale':
      return honest.map((x) => x * a.factor);
    case 'signflip':
      return honest.map((x) => -x);
    case 'stale':
      return (previous && previous.length === honest.length ? previous : honest).slice();
    case 'random': {
      const out = new Float32Array(honest.length);
      for (let i = 0; i < out.length; i++) {
        const u = Math.max(rand(), 1e-12);
        out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
      }
      const k = norm(honest) / Math.max(norm(out), 1e-30);
      for (let i = 0; i < out.length; i++) out[i] *= k;
      return out;
    }
  }
}

/** What an adversary did (tests check the attack happened). */
export interface AttackLog {
  /** Gradient read-backs corrupted. */
  gradients: number;
  /** Activation payloads replaced. */
  activations: number;
  /** Control messages forged or altered. */
  forged: number;
}

export function emptyAttackLog(): AttackLog {
  return { gradients: 0, activations: 0, forged: 0 };
}

/** A StageCompute whose contribution is corrupted as `attack` says; every computation is `inner`'s. */
export class AttackingCompute extends DelegatingCompute {
  /** The gradient phase: between zeroGrads and the write-back of the reduced gradient. */
  private contributing = false;
  private corrupted: Float32Array | null = null;
  private lastHonest: Float32Array | null = null;
  private previous: Float32Array | null = null;
  private lastActs: Uint8Array | null = null;
  private readonly rand: () => number;

  constructor(
    inner: StageCompute,
    readonly attack: AttackSpec,
    seed: number,
    private readonly log: AttackLog = emptyAttackLog(),
  ) {
    super(inner);
    this.rand = mulberry32(seed);
  }

  override async forward(slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array> {
    if (this.attack.mode !== 'bad-activations') return this.inner.forward(slot, input, key);
    if ('tokens' in input) {
      // Same tokens, wrong order: the real forward makes a valid payload of the wrong activations.
      const acts = await this.inner.forward(slot, { tokens: input.tokens.slice().reverse() }, key);
      this.log.activations++;
      return acts;
    }
    const acts = await this.inner.forward(slot, input, key);
    const prev = this.lastActs;
    this.lastActs = acts.slice();
    if (!prev || prev.byteLength !== acts.byteLength) return acts;
    this.log.activations++;
    return prev;
  }

  override async zeroGrads(): Promise<void> {
    await this.inner.zeroGrads();
    if (this.lastHonest) this.previous = this.lastHonest;
    this.lastHonest = null;
    this.corrupted = null;
    this.contributing = true;
  }

  override async readFlat(which: FlatWhich, range?: FlatRange): Promise<Float32Array> {
    // A part (the tied wte's slot, where the reduce reads no more) passes as it is.
    const honest = await this.inner.readFlat(which, range);
    if (range || which !== 'grads' || !this.contributing || !isGradientAttack(this.attack)) return honest;
    if (!this.corrupted) {
      this.lastHonest = honest.slice();
      this.corrupted = corruptGradient(this.attack, honest, this.previous, this.rand);
      this.log.gradients++;
    }
    return this.corrupted.slice();
  }

  override async writeFlat(which: FlatWhich, data: Float32Array, offset?: number): Promise<void> {
    if (which === 'grads') this.contributing = false; // the reduced gradient: reads after this are honest
    return this.inner.writeFlat(which, data, offset);
  }
}

/** `inner` whose stages attack as `attack` says (seeded by `seed`). */
export function attackingBackend(inner: ComputeBackend, attack: AttackSpec, seed: number, log: AttackLog = emptyAttackLog()): ComputeBackend {
  let stages = 0;
  return wrapStages(inner, (stage) => new AttackingCompute(stage, attack, (seed + stages++) >>> 0, log));
}

/** The loss a forging adversary claims. */
export const FORGED_LOSS = 0.001;

/**
 * forge-reports: the control messages an adversary adds to or alters in its traffic to the coordinator. `observe`
 * sees every message it receives; `outgoing` maps each message it sends to what it sends instead.
 */
export class ReportForger implements ControlForger {
  constructor(
    private readonly me: { peerId: () => string; stage: () => number | null; stages: () => number },
    private readonly send: (msg: ControlMessage) => void,
    private readonly log: AttackLog = emptyAttackLog(),
  ) {}

  observe(msg: ControlMessage): void {
    if (msg.type !== 'step-begin') return;
    const { step, attempt } = msg;
    const owners = stepOwners(msg);
    const id = this.me.peerId();
    const forged: ControlMessage[] = [];
    owners.forEach((o, mb) => {
      if (o !== id) forged.push({ type: 'mb-done', step, attempt, mb });
      forged.push({ type: 'mb-loss', step, attempt, mb, loss: FORGED_LOSS });
    });
    const mine = this.me.stage();
    const S = this.me.stages();
    const other = S > 1 ? ((mine ?? 0) + 1) % S : null;
    if (other !== null) forged.push({ type: 'grad-sumsq', step, attempt, stage: other, value: 1e-12 });
    for (const m of forged) this.send(m);
    this.log.forged += forged.length;
  }

  outgoing(msg: ControlMessage): ControlMessage {
    if (msg.type !== 'mb-loss') return msg;
    this.log.forged++;
    return { ...msg, loss: FORGED_LOSS };
  }
}

/** What a report-altering adversary hooks into its control traffic (ReportForger, RobustFramer). */
export interface ControlForger {
  observe(msg: ControlMessage): void;
  outgoing(msg: ControlMessage): ControlMessage;
}

/** A digest that is not `d` (same form: hex of 16 bytes). */
function otherDigest(d: string): string {
  return (d[0] === '0' ? '1' : '0') + d.slice(1);
}

/**
 * frame-robust: its grad-sumsq.robust report names, for every other rank, a digest that rank never sent (keeping the
 * rank's signature of the real one: it cannot sign for another). Everything else it computes and reports honestly.
 */
export class RobustFramer implements ControlForger {
  private rank = -1;

  constructor(
    private readonly me: { peerId: () => string },
    private readonly log: AttackLog = emptyAttackLog(),
  ) {}

  observe(msg: ControlMessage): void {
    if (msg.type !== 'step-reduce') return;
    const id = this.me.peerId();
    this.rank = msg.members.reduce((r, m) => (m.includes(id) ? m.indexOf(id) : r), -1);
  }

  outgoing(msg: ControlMessage): ControlMessage {
    if (msg.type !== 'grad-sumsq' || !msg.robust) return msg;
    const digests = msg.robust.digests.map((d, j) => (d === null || j === this.rank ? d : otherDigest(d)));
    this.log.forged++;
    return { ...msg, robust: { ...msg.robust, digests } };
  }
}
