// The swarm's coordinator (docs/swarm.md). It never touches tensors: it runs over the control plane (a
// SignalingClient with role 'coordinator'), assigns joining peers a stage, announces membership, keeps the step
// counter, decides when a step is complete, collects losses, computes the global clip scale from the stages'
// gradient sums of squares, and re-runs a step (attempt + 1, microbatches re-owned by live first-stage replicas)
// when a member vanishes before the step's update was sent.
import { Emitter, type Unsubscribe } from '../net/emitter';
import { isNatFailure } from '../net/nat-failure';
import { stepOwners, type ControlMessage, type ControlOf, type MemberClaim } from '../protocol/messages';
import { PROTOCOL_VERSION } from '../protocol/version';
import { learningRate } from '../model/schedule';
import { partitionLayers } from '../model/layer-partition';
import type { StageRange } from '../model/stage-role';
import { assignStage } from './assignment';
import { budgetRefusal, describePlan, stagesThatFit, stageTrainBytes } from './stage-budget';
import { admit, MAX_STAGE_MEMBERS, standbyReasons, standbySummary, wireSpeed, type Admission, type Candidate } from './membership-budget';
import { ownersOf } from './owners';
import { slotCount, trustOf, type RunConfig } from '../protocol/run-config';
import { lanesOf, localSyncOf } from '../swarm/local-sync';
import { isSyncStep } from '../model/outer-optimizer';
import { judgeRobust, StrikeBook, type RobustReport, type Striker } from './strikes';
import { lossOfReports, refuseReport, ReportGate, type AttemptView } from './authorize';
import { TraceBook } from './traces';
import { Rebalancer, type StepTiming } from './rebalance';
import { StepValidation, type StepCheck } from './validation';
import { MicrobatchDeadlines } from './deadlines';
import { Liveness } from './liveness';
import { Holdings } from './holdings';
import { StageRestorer, type EpochPlan, type RestoreHost } from './stage-restore';
import type { StepReport } from './step-report';
import { meanStageTime, type StageTime } from '../protocol/stage-time';
import { Adoption, type AdoptionPlan, type ResumeState } from './adoption';

/** What the coordinator needs of a SignalingClient (so tests can drive it with a fake). */
export interface ControlPlane {
  readonly peerId: string;
  on(event: 'control', handler: (ev: { from: string; msg: ControlMessage }) => void): Unsubscribe;
  on(event: 'peer-left', handler: (ev: { peerId: string }) => void): Unsubscribe;
  sendControl(msg: ControlMessage, to?: string): void;
  /** A member's public key (the signaling server's roster): the signatures in robust reports are checked with it. */
  keyOf(peerId: string): string | undefined;
  /**
   * False while the signaling connection reconnects or `peerId` has not rejoined the restarted server yet: a ping
   * cannot reach it, so its silence freezes nobody (docs/resilience.md, "Signaling server restart"). Default: true.
   */
  reachable?(peerId: string): boolean;
}

export interface CoordinatorOptions {
  run: RunConfig;
  /** Peers that must have joined (and be assigned) before step 0 begins. */
  minPeers: number;
  /** A step attempt that makes no progress for this long is re-run (default 60 s). */
  stepTimeoutMs?: number;
  /** Members must report swarm-ready within this (default 60 s); laggards are dropped. */
  readyTimeoutMs?: number;
  /** Floor of the per-attempt microbatch deadline (default 2000; src/coordinator/deadlines.ts). */
  mbDeadlineMinMs?: number;
  /** A pinged member that does not pong within this is frozen (default 2000; src/coordinator/liveness.ts). */
  pingTimeoutMs?: number;
  log?: (s: string) => void;
  /**
   * Per-step mode: first-stage replicas own microbatches in proportion to their measured speed (owners.ts) instead
   * of a round robin. Off by default: ownership then follows timings, so two runs of one seed no longer sum their
   * gradients in the same order (not bitwise equal), and the parity and validation tests rely on that.
   */
  ownersBySpeed?: boolean;
  /** A paused run (a stage with no live replica) waits this long for a copy of it before it fails (default 600 s). */
  restoreWaitMs?: number;
  /** Resume a saved run (src/coordinator/run-state.ts): re-adopt its swarm instead of starting at step 0. */
  resume?: ResumeState;
  /** Resuming: how long to wait for the saved members to re-announce before going on without them (default 15 s). */
  adoptWaitMs?: number;
  /**
   * Step 0 also waits for begin(): the coordinator page connects when a run is created, so tabs that wait in the room
   * announce themselves and are assigned (and show) before the person presses Start. Default: false (start at once).
   */
  hold?: boolean;
  /**
   * Split the model by the peers' memory budgets (peer-info memoryBytes and maxBindingBytes; layer-partition.ts)
   * instead of run.stages: the first minPeers peers wait unassigned, then the fewest stages that fit their budgets
   * replace run.stages (swarm-assign carries the planned run) and each is assigned its planned stage. A swarm too
   * small for the model is said (the `plan` event, the log) and waits for more peers. Not with a learned bottleneck
   * (its placement follows the stage boundaries) or a resumed run (its split is saved).
   */
  planStages?: boolean;
}

export type { StepReport };

/** One member's verified work in one step (the ledger credits it; docs/trust.md). */
export interface WorkEntry {
  peerId: string;
  stage: number;
  /** Microbatch forwards / backwards it ran in the step's final attempt, as the traces agree. */
  forward: number;
  backward: number;
  /** Validations it ran for this step. */
  validations: number;
  /**
   * Microbatches those validations replayed (each forward + backward: the `validate` messages' `backward` lists);
   * the ledger credits validation work as this recomputation. Absent: 0.
   */
  recomputed?: number;
}

export type CoordinatorEvents = {
  /** A strike against a peer (robust aggregation excluded it, a validation failed, its trace disagrees, ...). */
  strike: { peerId: string; reason: string; strikes: number; step: number };
  /** A peer evicted after `trust.strikes` strikes: out of the membership, its unverified work dropped. */
  evicted: { peerId: string; reason: string; step: number };
  /** A validator's verdict on a worker's contribution. */
  validation: { step: number; stage: number; worker: string; validator: string; ok: boolean; detail: string; maxAbsDiff: number | null };
  /** A completed step's verified work, per member (after the step's validations). */
  work: { step: number; entries: WorkEntry[] };
  step: StepReport;
  restart: { step: number; attempt: number; reason: string };
  membership: { epoch: number; stages: string[][]; joins: string[] };
  /** Waiting peers the membership messages cannot carry now (membership-budget.ts), when that changes; 0 when none. */
  standby: { peers: number; reasons: string };
  assigned: { peerId: string; stage: number };
  /** Live rebalancing moved a member to another stage (src/coordinator/rebalance.ts); it joins at the next membership. */
  moved: { peerId: string; from: number; to: number; reason: string };
  vanished: { peerId: string };
  /** A resumed coordinator re-adopted its swarm: the run goes on at `step` (attempt `attempt`). */
  adopted: { step: number; attempt: number; members: string[]; joiners: string[] };
  /** A member that did not answer a ping in time: dropped like a vanished peer (not a strike; liveness.ts). */
  frozen: { peerId: string; reason: string; step: number };
  /** A peer dropped something `peer` sent it (e.g. a payload its codec refuses). */
  'peer-report': { from: string; peer: string; reason: string };
  /** The run paused at `step`: `stages` have no live replica; restoring them (docs/resilience.md "Stage loss"). */
  paused: { step: number; reason: string; stages: number[] };
  /** The run goes on at `step` (< `from`: rolled back from `from`). */
  resumed: { step: number; from: number; stages: number[] };
  /**
   * planStages: the split of the model by the waiting peers' budgets (stage s to peer peers[s], bytes[s] of
   * training memory), or why those peers cannot hold the model (the run waits for more).
   */
  plan: { ok: true; stages: StageRange[]; bytes: number[]; peers: string[]; modelBytes: number } | { ok: false; reason: string; waiting: number };
};

interface PeerRecord {
  peerId: string;
  stage: number;
  throughput: number;
  /** Member of the running membership (linked up), or assigned and waiting to join at a step boundary. */
  state: 'assigned' | 'member';
  alive: boolean;
}

/** Epochs in a row a peer may fail to link up in before it is dropped (establish, linkFailure). */
const LINK_RETRIES = 3;

class Restart extends Error {
  override name = 'Restart';
}

/** The gradient's scale from its global norm: clipped to `clip` (0: no clipping); 0 (skip the update) if not finite. */
export function clipScale(norm: number, clip: number): number {
  return !Number.isFinite(norm) ? 0 : clip > 0 ? Math.min(1, clip / (norm + 1e-6)) : 1;
}

export class Coordinator implements Striker {
  readonly events = new Emitter<CoordinatorEvents>();
  /** The run (with planStages: its stages are the plan once the first minPeers peers have joined). */
  run: RunConfig;
  readonly reports: StepReport[] = [];
  /** Stage checkpoints each peer holds (peer-info.checkpoints, checkpoint-saved): restores and the saved run read it. */
  readonly holdings = new Holdings();
  private readonly peers = new Map<string, PeerRecord>();
  /** Peers whose `hello` named this coordinator's protocol version. */
  private readonly spoken = new Set<string>();
  private readonly offs: Unsubscribe[] = [];
  private readonly opts: CoordinatorOptions;
  private wakers = new Set<() => void>();
  private closed = false;
  /** Step 0 waits for begin() (opts.hold). */
  private held: boolean;
  /** Why stop() was called: the run ends after the step in progress (null: runs to its last step). */
  private stopping: string | null = null;
  private epoch = 0;
  /** The last standby / over-budget line logged (admission): logged when it changes, not every step. */
  private standbyNote = '';
  /** The step the run is at (steps completed). */
  step = 0;
  private readonly done: Promise<StepReport[]>;
  // Per step-attempt collections.
  private cur: AttemptView | null = null;
  private mbDone = new Set<number>();
  /** mb-loss reports per microbatch, per last-stage sender (lossOf picks the one on the microbatch's route). */
  private losses = new Map<number, Map<string, number | null>>();
  /** Reports refused by authorize.ts (who may report what), counted per type. */
  readonly refusedReports = new ReportGate((s) => this.log(s));
  private sumsq = new Map<number, number | null>();
  /** Local-steps mode: sum of squares per (stage, lane), key `${stage}:${lane}`. */
  private laneSumsq = new Map<string, number | null>();
  /** Local-steps mode: params digests of the outer sync after step `syncStep`, per peer. */
  private syncStep = -1;
  private syncMembers: string[][] = [];
  private syncDone = new Map<string, string>();
  private stepDone = new Map<string, string>();
  /** The current attempt's step traces and validations (docs/trust.md "Validators"; src/coordinator/validation.ts). */
  private book: TraceBook | null = null;
  private validation: StepValidation | null = null;
  /** The latest error each peer reported, with the epoch it came in (a link-up that failed: establish retries). */
  private readonly peerErrors = new Map<string, { at: number; detail: string }>();
  /** Epochs in a row a peer failed to link up in. */
  private readonly linkRetries = new Map<string, number>();
  /** Adapter kind per peer (peer-info): validations compare bitwise within a kind, within a tolerance across. */
  private readonly adapters = new Map<string, string>();
  /** Params digest each peer reported at its last step-done: a validator must hold the worker's. */
  private committed = new Map<string, string>();
  /** Validator rotation per stage. */
  private readonly rotation: number[] = [];
  private ready = new Map<string, number>();
  private progressAt = 0;
  /** Strikes per peer identity; `trust.strikes` of them evict (docs/trust.md). */
  private readonly strikeBook: StrikeBook;
  /** Robust aggregation: every member's grad-sumsq of the current attempt, by peer. */
  private robustReports = new Map<string, RobustReport & { stage: number }>();
  /** Live rebalancing: stage loads from the members' step-done timings (the latest per peer, with its attempt). */
  private readonly balancer = new Rebalancer();
  private readonly timings = new Map<string, { step: number; attempt: number; timing: StepTiming }>();
  /** Stragglers and frozen peers (docs/resilience.md): microbatch deadlines and pings. */
  private readonly deadlines: MicrobatchDeadlines;
  private readonly liveness: Liveness;
  /** Stage loss, reloads and custody (src/coordinator/stage-restore.ts). */
  private readonly restorer: StageRestorer;

  constructor(
    private readonly cp: ControlPlane,
    opts: CoordinatorOptions,
  ) {
    this.opts = opts;
    this.run = opts.run;
    if (opts.planStages) {
      if (opts.resume) throw new Error('planStages: a resumed run keeps its saved split');
      if (opts.run.compress?.bottleneck)
        throw new Error('planStages: a run with a learned bottleneck places it at the stage boundaries; give run.stages');
    }
    this.planned = !opts.planStages;
    this.held = opts.hold ?? false;
    this.strikeBook = new StrikeBook(trustOf(opts.run).strikes);
    this.restorer = new StageRestorer(this.restoreHost(), { restoreWaitMs: opts.restoreWaitMs });
    if (opts.resume) this.restore(opts.resume);
    this.deadlines = new MicrobatchDeadlines({ stepTimeoutMs: opts.stepTimeoutMs ?? 60_000, minMs: opts.mbDeadlineMinMs });
    this.liveness = new Liveness(
      {
        send: (msg, to) => this.cp.sendControl(msg, to),
        isAlive: (p) => this.isAlive(p),
        keep: (p) => (this.cp.reachable?.(p) === false ? 'the signaling server is away: the ping cannot reach it' : this.lastReplica(p)),
        freeze: (p, reason) => this.freeze(p, reason),
        revive: (p) => this.revive(p),
        log: (s) => this.log(s),
      },
      { pingTimeoutMs: opts.pingTimeoutMs },
    );
    this.offs.push(
      cp.on('control', ({ from, msg }) => this.onControl(from, msg)),
      cp.on('peer-left', ({ peerId }) => {
        this.spoken.delete(peerId);
        this.planWaiting.delete(peerId);
        this.liveness.forget(peerId);
        this.vanish(peerId);
      }),
    );
    this.done = this.main();
    this.done.catch(() => undefined);
  }

  /** Lets a held run (opts.hold) start: step 0 begins once enough peers are assigned. */
  begin(): void {
    this.held = false;
    this.wake();
  }

  /**
   * Ends the run early and cleanly: the step in progress completes (or, before step 0, none begins), then the run
   * ends as a finished one (finished() resolves, the peers get the run's shutdown with `reason`).
   */
  stop(reason: string): void {
    this.stopping ??= reason;
    this.wake();
  }

  /** Resolves with every step's report when the run's steps are done; rejects if the run cannot go on. */
  finished(): Promise<StepReport[]> {
    return this.done;
  }

  private log(s: string): void {
    this.opts.log?.(`[coordinator] ${s}`);
  }

  /** Current membership (live members per stage, in rank order). */
  members(): string[][] {
    const out: string[][] = this.run.stages.map(() => []);
    for (const p of this.peers.values()) if (p.alive && p.state === 'member') out[p.stage].push(p.peerId);
    return out;
  }

  private throughputs(stages: string[][]): number[][] {
    // Measured tokens/s once known (step-done timings), else the join benchmark (rebalance.ts speeds).
    const speeds = this.balancer.speeds(stages, (p) => this.peers.get(p)?.throughput ?? 1, this.run.B * this.run.T);
    return speeds.map((m) => m.map(wireSpeed));
  }

  // ------------------------------------------------------------------------------------------- events

  private wake(): void {
    this.progressAt = performance.now();
    for (const w of [...this.wakers]) w();
  }

  /** A throw while handling one peer's message is that message's problem: logged, never the coordinator's end. */
  private onControl(from: string, msg: ControlMessage): void {
    try {
      this.handleControl(from, msg);
    } catch (err) {
      this.log(`dropped ${msg.type} from ${from}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private handleControl(from: string, msg: ControlMessage): void {
    if (this.closed) return;
    if (this.liveness.heard(from, msg)) return; // a pong (and any message of a frozen peer revives it)
    const c = this.cur;
    const refusal = refuseReport(from, msg, {
      cur: c,
      syncing: this.syncStep >= 0 ? this.syncMembers : null,
      announced: (p) => this.isAlive(p),
    });
    if (refusal) return this.refusedReports.refuse(from, msg.type, refusal);
    const mine = (m: { step: number; attempt: number }) => !!c && m.step === c.step && m.attempt === c.attempt;
    switch (msg.type) {
      case 'hello':
        this.hello(from, msg.protocol);
        return;
      case 'peer-info':
        this.holdings.announce(from, msg.checkpoints ?? []); // what it holds now (a fresh store: nothing)
        this.join(from, msg);
        break;
      case 'checkpoint-saved':
        this.holdings.add(from, msg);
        this.restorer.onSaved(from, msg);
        break;
      case 'swarm-ready':
        this.ready.set(from, msg.epoch);
        this.restorer.onReady(from, msg);
        break;
      case 'mb-done':
        if (mine(msg)) this.mbDone.add(msg.mb);
        break;
      case 'mb-loss':
        if (mine(msg)) {
          let byPeer = this.losses.get(msg.mb);
          if (!byPeer) this.losses.set(msg.mb, (byPeer = new Map()));
          byPeer.set(from, msg.loss);
        }
        break;
      case 'grad-sumsq': {
        const lane = c?.members[msg.stage]?.indexOf(from) ?? -1;
        if (mine(msg) && lane === 0) this.sumsq.set(msg.stage, msg.value);
        if (mine(msg) && lane >= 0) this.laneSumsq.set(`${msg.stage}:${lane}`, msg.value);
        if (mine(msg) && lane >= 0) this.robustReports.set(from, { stage: msg.stage, value: msg.value, robust: msg.robust });
        break;
      }
      case 'sync-done':
        if (msg.step === this.syncStep) this.syncDone.set(from, msg.digest);
        break;
      case 'step-done':
        if (mine(msg)) this.stepDone.set(from, msg.digest);
        if (mine(msg) && msg.timing) this.timings.set(from, { step: msg.step, attempt: msg.attempt, timing: msg.timing });
        break;
      case 'step-trace': {
        const why = this.book ? this.book.add(from, msg) : 'no step running';
        if (why) this.log(`dropped step-trace from ${from}: ${why}`);
        break;
      }
      case 'validation':
        if (!this.validation?.onVerdict(from, msg)) this.log(`dropped validation of ${msg.worker} from ${from}: none pending`);
        break;
      case 'status':
        if (msg.state === 'error') this.log(`${from} reports an error: ${msg.detail ?? ''}`);
        if (msg.state === 'error') this.peerErrors.set(from, { at: this.epoch, detail: msg.detail ?? '' });
        this.restorer.onStatus(from, msg);
        break;
      case 'link-down':
        this.liveness.linkDown(from, msg.peer, msg.reason);
        return;
      case 'peer-report':
        this.log(`${from} reports ${msg.peer}: ${msg.reason}`);
        this.events.emit('peer-report', { from, peer: msg.peer, reason: msg.reason });
        return;
      default:
        return;
    }
    this.wake();
  }

  /**
   * The loss of microbatch mb in the current attempt: the report of the last-stage member on its route. Without a
   * route (refined from the step traces), the only last-stage member's, or the value all reporters agree on.
   */
  lossOf(mb: number): number | null | undefined {
    const last = this.cur?.members[this.cur.members.length - 1] ?? [];
    return lossOfReports(this.losses.get(mb), last, this.routeOf?.(mb) ?? null);
  }

  /** The last-stage peer microbatch mb of the current attempt went through, from the step traces (docs/trust.md). */
  routeOf: ((mb: number) => string | null) | null = null;

  /** The join handshake's first message: a peer of another protocol version is refused, saying both versions. */
  private hello(peerId: string, protocol: number): void {
    if (protocol === PROTOCOL_VERSION) {
      this.spoken.add(peerId);
      return;
    }
    this.spoken.delete(peerId);
    this.refuse(peerId, `protocol version ${protocol} is not this coordinator's ${PROTOCOL_VERSION}: update the peer`);
  }

  /** Training bytes of each stage of the run (stage-budget.ts) by the peer's binding limit, computed at first need. */
  private stageBytes = new Map<number | undefined, number[]>();
  /** planStages: whether the split is planned (always, without planStages). */
  private planned: boolean;
  /** planStages: peers waiting for the plan, in join order, with their peer-info. */
  private readonly planWaiting = new Map<string, ControlOf<'peer-info'>>();
  /** The last plan refusal logged (logged when it changes). */
  private lastPlanRefusal = '';

  private bytesFor(maxBindingBytes: number | undefined): number[] {
    let b = this.stageBytes.get(maxBindingBytes);
    if (!b) this.stageBytes.set(maxBindingBytes, (b = stageTrainBytes(this.run, maxBindingBytes)));
    return b;
  }

  /**
   * planStages: once minPeers peers wait, split the model by their budgets and binding limits and assign each its
   * planned stage; the rest join as usual.
   */
  private tryPlan(): void {
    if (this.planned || this.planWaiting.size < this.opts.minPeers) return;
    const waiting = [...this.planWaiting];
    const plan = partitionLayers({
      config: this.run.model,
      dims: { B: this.run.B, T: this.run.T },
      slots: slotCount(this.run),
      // A peer that gave no budget can hold any stage.
      budgets: waiting.map(([, m]) => m.memoryBytes ?? Number.MAX_SAFE_INTEGER),
      // Each stage sized as its peer runs it (unknown limit: the whole-vocabulary head, the larger).
      bindings: waiting.map(([, m]) => m.maxBindingBytes),
    });
    if (!plan.ok) {
      if (plan.reason !== this.lastPlanRefusal) this.log(`cannot plan with ${waiting.length} peer(s) yet: ${plan.reason}`);
      this.lastPlanRefusal = plan.reason;
      this.events.emit('plan', { ok: false, reason: plan.reason, waiting: waiting.length });
      return;
    }
    this.planned = true;
    this.run = { ...this.run, stages: plan.ranges };
    this.stageBytes.clear();
    const done = {
      ok: true as const,
      stages: plan.ranges,
      bytes: plan.bytes,
      peers: plan.peers.map((i) => waiting[i][0]),
      modelBytes: plan.modelBytes,
    };
    this.log(`planned for ${waiting.length} peer(s): ${describePlan(done)}`);
    this.events.emit('plan', done);
    this.planWaiting.clear();
    // The planned peers to their stages, then the rest as any joiner.
    for (const [s, i] of plan.peers.entries()) this.join(waiting[i][0], waiting[i][1], s);
    waiting.forEach(([peerId, msg], i) => {
      if (!plan.peers.includes(i)) this.join(peerId, msg);
    });
    this.wake();
  }

  private refuse(peerId: string, reason: string): void {
    this.log(`refusing ${peerId}: ${reason}`);
    this.cp.sendControl({ type: 'refused', reason, protocol: PROTOCOL_VERSION }, peerId);
  }

  /** `planned`: the stage the plan gives this peer (tryPlan). */
  private join(peerId: string, msg: ControlOf<'peer-info'>, planned?: number): void {
    // Peers of version 1 sent no hello: their peer-info must not slip in as if it were ours.
    if (this.strikeBook.evicted(peerId)) return this.refuse(peerId, 'evicted from this run');
    if (!this.spoken.has(peerId))
      return this.refuse(peerId, `peer-info without a hello: the peer speaks a protocol older than ${PROTOCOL_VERSION}; update the peer`);
    if (msg.member && this.claimed(peerId, msg, msg.member)) return;
    const known = this.peers.get(peerId);
    if (known?.alive) return; // duplicate announcement
    if (known) this.peers.delete(peerId); // the same id back after it vanished: a fresh peer (its state is gone)
    if (!this.planned) {
      if (!this.planWaiting.has(peerId))
        this.log(`${peerId} (${msg.platform}) waits for the plan (${this.planWaiting.size + 1}/${this.opts.minPeers})`);
      this.planWaiting.set(peerId, msg);
      return this.tryPlan();
    }
    // One pass over the peers (not one per stage): thousands join one after another.
    const stages = this.run.stages.map((r) => ({ layers: r.layerEnd - r.layerStart, throughputs: [] as number[] }));
    for (const p of this.peers.values()) if (p.alive) stages[p.stage]?.throughputs.push(p.throughput);
    // Only stages its memory holds (peer-info memoryBytes; none at all: refused, saying what the run needs).
    const need = this.bytesFor(msg.maxBindingBytes);
    const refusal = budgetRefusal(need, msg.memoryBytes);
    if (refusal) return this.refuse(peerId, refusal);
    const fits = stagesThatFit(need, msg.memoryBytes);
    // A holder of a checkpoint of its former stage (a reload) or of an empty one goes there (stage-restore.ts).
    const restored = this.restorer.stageFor(peerId, known?.stage, msg.checkpoints);
    const stage =
      planned !== undefined && fits[planned]
        ? planned
        : restored !== null && fits[restored]
          ? restored
          : assignStage(stages, MAX_STAGE_MEMBERS, fits);
    const rec: PeerRecord = { peerId, stage, throughput: msg.throughput ?? 1, state: 'assigned', alive: true };
    this.peers.set(peerId, rec);
    this.aliveVersion++;
    this.adapters.set(peerId, msg.adapter ?? '');
    this.log(`${peerId} (${msg.platform}, ${Math.round(rec.throughput)} tok/s) -> stage ${stage}`);
    this.cp.sendControl({ type: 'swarm-assign', stage, run: this.run }, peerId);
    this.events.emit('assigned', { peerId, stage });
  }

  /** A member silent to a ping (liveness.ts): out of the membership like a vanished peer; not a strike. */
  private freeze(peerId: string, reason: string): void {
    const p = this.peers.get(peerId);
    if (!p?.alive) return;
    this.setAlive(p, false);
    this.log(`${peerId} (stage ${p.stage}) is frozen: ${reason}`);
    this.events.emit('frozen', { peerId, reason, step: this.step });
    this.wake();
  }

  /** A frozen peer heard from again: a joiner of its stage (it copies the state from a live replica). */
  private revive(peerId: string): void {
    const p = this.peers.get(peerId);
    if (!p || p.alive || this.strikeBook.evicted(peerId)) return;
    this.setAlive(p, true);
    p.state = 'assigned';
    this.events.emit('assigned', { peerId, stage: p.stage });
    this.wake();
  }

  /** Why a silent peer is not dropped: it is its stage's last live replica (nobody could take its work over). */
  private lastReplica(peerId: string): string | null {
    const p = this.peers.get(peerId);
    if (!p) return null;
    const twins = this.members()[p.stage].filter((q) => q !== peerId);
    return twins.length === 0 ? `it is stage ${p.stage}'s last live replica` : null;
  }

  private vanish(peerId: string): void {
    this.adoption?.drop(peerId);
    const p = this.peers.get(peerId);
    if (!p || !p.alive) return;
    this.setAlive(p, false);
    this.log(`${peerId} (stage ${p.stage}) vanished`);
    this.events.emit('vanished', { peerId });
    this.wake();
  }

  /** Peers evicted from this run so far (an evicted identity cannot rejoin it). */
  get evicted(): string[] {
    return this.strikeBook.evictedIds;
  }

  /**
   * One strike against a peer (robust aggregation excluded it or saw it equivocate, a validation failed, ...);
   * `trust.strikes` strikes evict it. Returns its strike count.
   */
  strike(peerId: string, reason: string): number {
    if (this.strikeBook.evicted(peerId)) return this.strikeBook.count(peerId);
    const { strikes, evict } = this.strikeBook.add(peerId);
    this.log(`strike ${strikes}/${trustOf(this.run).strikes} against ${peerId}: ${reason}`);
    this.events.emit('strike', { peerId, reason, strikes, step: this.step });
    if (evict) this.evict(peerId, reason);
    return strikes;
  }

  /**
   * Out of the run: told to shut down, out of the membership and the owners from the next attempt on. A member of
   * the running step makes it re-run without it while its update is not out (the waits' `vanished` check).
   */
  private evict(peerId: string, reason: string): void {
    this.log(`evicting ${peerId}: ${reason}`);
    this.events.emit('evicted', { peerId, reason, step: this.step });
    this.cp.sendControl({ type: 'shutdown', reason: `evicted: ${reason}`.slice(0, 1024) }, peerId);
    const p = this.peers.get(peerId);
    if (p) this.setAlive(p, false);
    this.wake();
  }

  /**
   * Robust aggregation: judges every stage's grad-sumsq reports (src/coordinator/strikes.ts), strikes, and takes each
   * stage's sum of squares from its replicas' majority. Throws Restart when the step must re-run (equivocation, no
   * majority, a member evicted).
   */
  private async judgeRobustReduce(step: number, attempt: number, members: string[][]): Promise<void> {
    let rerun: string | null = null;
    const ctx = { runId: this.run.runId, step, attempt, keyOf: (p: string) => this.cp.keyOf(p) };
    const verdicts = await Promise.all(
      members.map((m, s) => judgeRobust(s, m, new Map([...this.robustReports].filter(([, r]) => r.stage === s)), ctx)),
    );
    verdicts.forEach((v, s) => {
      this.sumsq.set(s, v.value);
      for (const x of v.strikes) this.strike(x.peerId, x.reason);
      rerun ??= v.rerun;
    });
    const gone = members.flat().find((p) => !this.isAlive(p));
    if (gone) rerun ??= `${gone} left the step (evicted)`;
    if (rerun) throw new Restart(rerun);
  }

  /**
   * A member that reported an error while this epoch links up (a data channel that did not open in time on a loaded
   * machine, a state transfer that broke) will never say ready: announce the membership again at once, so every
   * member retries what failed, instead of waiting out the ready timeout. A peer that fails LINK_RETRIES epochs in a
   * row is dropped (it may come back as a joiner).
   */
  private linkFailure(everyone: string[], epoch: number): string | Error | null {
    for (const p of everyone) {
      const e = this.peerErrors.get(p);
      if (!e || e.at !== epoch || this.ready.get(p) === epoch) continue;
      this.peerErrors.delete(p);
      if (isNatFailure(e.detail)) return this.natFailure(everyone, e.detail);
      const n = (this.linkRetries.get(p) ?? 0) + 1;
      this.linkRetries.set(p, n);
      if (n >= LINK_RETRIES) {
        this.log(`${p} failed to link up ${n} times (${e.detail}): dropped`);
        this.linkRetries.delete(p);
        this.vanish(p);
        return `${p} failed to link up ${n} times`;
      }
      return `${p} could not link up for epoch ${epoch} (${e.detail}); announcing the membership again`;
    }
    return null;
  }

  /**
   * Two members whose link cannot get through their NATs (src/net/nat-failure.ts) would fail the same way in every
   * epoch: the run fails at once with the peer's message (which says what to configure), and every member is told
   * so in its own shutdown (the run's '*' shutdown may be held for the weight collection).
   */
  private natFailure(everyone: string[], detail: string): Error {
    this.log(`${detail}: the run cannot link up`);
    for (const p of everyone) this.cp.sendControl({ type: 'shutdown', reason: detail.slice(0, 1024) }, p);
    return new Error(detail);
  }

  /** Live rebalancing: each stage's measured load (ms per replica, median of the last steps), null until known. */
  stageLoads(): (number | null)[] {
    return this.balancer.loads();
  }

  /**
   * Live rebalancing after a completed step (docs/resilience.md): record its timings, and maybe move one member of
   * an over-served stage to the bottleneck. The moved peer is 'assigned' to its new stage (out of the old one's
   * membership) and joins it at the next membership with a state transfer from a live replica.
   */
  private rebalanceAfter(report: StepReport): void {
    const attempt = report.attempts - 1;
    const timings = new Map<string, StepTiming>();
    for (const [p, t] of this.timings) if (t.step === report.step && t.attempt === attempt) timings.set(p, t.timing);
    this.balancer.record(report.members, timings);
    const pending = [...this.peers.values()].some((p) => p.alive && p.state === 'assigned');
    if (pending || report.step + 1 >= this.run.steps) return;
    const move = this.balancer.decide(this.members(), localSyncOf(this.run) !== null);
    const rec = move && this.peers.get(move.peerId);
    if (!move || !rec?.alive || rec.stage !== move.from) return;
    rec.stage = move.to;
    rec.state = 'assigned';
    this.log(`moving ${move.peerId} from stage ${move.from} to stage ${move.to}: ${move.reason}`);
    this.cp.sendControl({ type: 'swarm-assign', stage: move.to, run: this.run }, move.peerId);
    this.events.emit('moved', { peerId: move.peerId, from: move.from, to: move.to, reason: move.reason });
  }

  /** Bumped whenever a peer's `alive` changes or a record is replaced (the step's vanished() check caches on it). */
  private aliveVersion = 0;

  private setAlive(p: PeerRecord, alive: boolean): void {
    p.alive = alive;
    this.aliveVersion++;
  }

  private isAlive(peerId: string): boolean {
    return this.peers.get(peerId)?.alive ?? false;
  }

  /**
   * Waits until `done()` holds. Throws Restart when `abort()` returns a reason; throws on timeout (Restart if
   * `restartOnTimeout`).
   */
  /** `abort` returns why to re-run (a Restart), or an Error that ends the run. */
  private waitFor(done: () => boolean, abort: () => string | Error | null, timeoutMs: number, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.progressAt = performance.now();
      const check = () => {
        if (this.closed) return finish(new Error('coordinator closed'));
        const why = abort();
        if (why instanceof Error) return finish(why);
        if (why) return finish(new Restart(why));
        if (done()) return finish();
      };
      const timer = setInterval(
        () => {
          if (performance.now() - this.progressAt > timeoutMs) finish(new Restart(`no progress for ${timeoutMs} ms while ${what}`));
        },
        Math.min(1000, timeoutMs / 4),
      );
      const finish = (err?: Error) => {
        clearInterval(timer);
        this.wakers.delete(check);
        if (err) reject(err);
        else resolve();
      };
      this.wakers.add(check);
      check();
    });
  }

  // ------------------------------------------------------------------------------------------- the run

  private async main(): Promise<StepReport[]> {
    const readyMs = this.opts.readyTimeoutMs ?? 60_000;
    // Start: enough peers assigned and no stage empty (resumed: the saved run's swarm re-adopted).
    if (this.adoption) await this.adopt(this.adoption);
    else
      await this.waitFor(
        () => {
          const live = [...this.peers.values()].filter((p) => p.alive);
          if (this.stopping !== null) return true;
          return !this.held && live.length >= this.opts.minPeers && this.run.stages.every((_, s) => live.some((p) => p.stage === s));
        },
        () => null,
        Number.POSITIVE_INFINITY,
        'waiting for peers',
      );
    if (this.stopping === null) await this.establish(readyMs);
    while (this.step < this.run.steps && this.stopping === null) {
      // Only when someone can be admitted: peers on standby (no room within the caps) must not re-run an epoch a step.
      if (this.admission(this.members(), false).admitted.length > 0) await this.establish(readyMs);
      let attempt = Math.max(this.firstAttempt, this.restorer.firstAttempt(this.step));
      this.firstAttempt = 0;
      for (;;) {
        if (this.closed) throw new Error('coordinator closed');
        // Local-steps mode: R lanes (the smallest replica count); replicas past it idle.
        const members = localSyncOf(this.run) ? lanesOf(this.members()) : this.members();
        const empty = members.findIndex((m) => m.length === 0);
        if (empty >= 0) {
          // Paused until the stage is restored from a checkpoint (maybe rolling the run back), or failed (stage-restore.ts).
          attempt = await this.restorer.recover(attempt);
          continue;
        }
        try {
          const report = await this.runStep(this.step, attempt, members);
          this.applying = null;
          this.reports.push(report);
          this.events.emit('step', report);
          this.rebalanceAfter(report);
          break;
        } catch (err) {
          this.liveness.unwatch();
          this.applying = null;
          if (!(err instanceof Restart)) throw err;
          attempt++;
          this.log(`step ${this.step}: ${err.message}; re-running as attempt ${attempt}`);
          this.events.emit('restart', { step: this.step, attempt, reason: err.message });
        }
      }
      this.step++;
      this.restorer.afterStep(this.step);
    }
    this.cur = null;
    this.liveness.close(); // the run is over: nobody is frozen any more
    const reason = this.stopping === null ? `run ${this.run.runId} complete` : `run ${this.run.runId} stopped at step ${this.step}: ${this.stopping}`;
    if (!this.closed) this.cp.sendControl({ type: 'shutdown', reason: reason.slice(0, 1024) }, '*');
    return this.reports;
  }

  /**
   * Between steps: announce the membership (live members + peers waiting to join, appended to their stage), the
   * joiners' state sources, and wait for every one of them to report ready for this epoch. With `plan` (a stage
   * restore, stage-restore.ts): announce that one and return false when it fails, so it is planned again.
   */
  private async establish(readyMs: number, plan?: EpochPlan): Promise<boolean> {
    for (;;) {
      const current = this.members();
      const stages = current.map((m) => [...m]);
      const admitted = plan ? [] : this.admission(current, true).admitted;
      for (const c of admitted) stages[c.stage].push(c.peer);
      // A reloaded peer holding the current checkpoint of its stage loads it instead of a transfer.
      const ep = plan ?? this.restorer.withReloads(stages, this.joinsOf(current, admitted));
      const epoch = ++this.epoch;
      const everyone = ep.stages.flat();
      this.log(
        `membership epoch ${epoch}: ${ep.stages.map((m, s) => `s${s}=[${m.join(',')}]`).join(' ')}${ep.joins.length ? ` joins ${ep.joins.map((j) => `${j.peer}<-${j.source}`).join(',')}` : ''}${ep.restores.length ? ` restores ${ep.restores.map((r) => `${r.peer}@${r.step}`).join(',')}` : ''}`,
      );
      this.cp.sendControl(this.membersMessage(epoch, ep), '*');
      this.events.emit('membership', { epoch, stages: ep.stages, joins: [...ep.joins.map((j) => j.peer), ...ep.restores.map((r) => r.peer)] });
      this.restorer.watch(ep);
      try {
        await this.waitFor(
          () => everyone.every((p) => !this.isAlive(p) || this.ready.get(p) === epoch),
          () =>
            everyone.some((p) => !this.isAlive(p))
              ? 'a member vanished while linking up'
              : (this.restorer.failure() ?? this.linkFailure(everyone, epoch)),
          readyMs,
          `waiting for swarm-ready of epoch ${epoch}`,
        );
      } catch (err) {
        if (!(err instanceof Restart)) throw err;
        // A failed restore or join (e.g. a damaged checkpoint): not a member; it joins again by a transfer.
        for (const p of this.restorer.takeFailed()) {
          const rec = this.peers.get(p);
          if (rec?.alive) rec.state = 'assigned';
        }
        for (const p of everyone) {
          if (this.isAlive(p) && this.ready.get(p) !== epoch && /no progress/.test(err.message)) {
            this.log(`${p} did not report ready for epoch ${epoch}: dropped`);
            this.vanish(p);
          }
        }
        if (plan) return false;
        continue;
      }
      // A restore or join that did not end at the expected state: not a member (it joins again by a transfer).
      const bad = new Set(this.restorer.misreported(ep));
      for (const p of everyone) {
        const rec = this.peers.get(p);
        if (rec?.alive) rec.state = bad.has(p) ? 'assigned' : 'member';
      }
      if (bad.size && plan) return false;
      if (bad.size) continue;
      for (const p of everyone) this.linkRetries.delete(p);
      return true;
    }
  }

  private membersMessage(epoch: number, ep: Pick<EpochPlan, 'stages' | 'joins' | 'restores'>): ControlOf<'swarm-members'> {
    return {
      type: 'swarm-members',
      epoch,
      stages: ep.stages,
      speeds: this.throughputs(ep.stages),
      joins: ep.joins,
      ...(ep.restores.length ? { restores: ep.restores } : {}),
      step: this.step,
    };
  }

  /** Admitted peers join a running swarm by copying their stage's state from its first live replica. */
  private joinsOf(current: string[][], admitted: readonly Candidate[]): ControlOf<'swarm-members'>['joins'] {
    if (!current.some((m) => m.length > 0)) return [];
    return admitted.map((c) => ({ peer: c.peer, stage: c.stage, source: current[c.stage][0] }));
  }

  /**
   * The waiting peers the next epoch admits: as many as its swarm-members and the step-begin after it carry within
   * the protocol's caps and the signed control size (membership-budget.ts); the rest stay assigned, on standby, and
   * are admitted when members leave. `note`: log the standby and the over-budget messages when they change.
   */
  private admission(current: string[][], note: boolean): Admission {
    const started = current.some((m) => m.length > 0);
    const waiting: Candidate[] = [];
    for (const p of this.peers.values()) {
      if (!p.alive || p.state !== 'assigned') continue;
      if (started && !current[p.stage][0]) {
        if (note) this.log(`${p.peerId} cannot join stage ${p.stage}: no live replica to copy the state from`);
        continue;
      }
      waiting.push({ peer: p.peerId, stage: p.stage });
    }
    if (waiting.length === 0) return { admitted: [], standby: [], overBudget: [] };
    const local = localSyncOf(this.run) !== null;
    const a = admit({
      current,
      waiting,
      joining: started,
      messages: (stages, admitted) => {
        const members = local ? lanesOf(stages) : stages;
        return [
          this.membersMessage(this.epoch + 1, this.restorer.withReloads(stages, this.joinsOf(current, admitted))),
          members.some((m) => m.length === 0) ? null : { type: 'step-begin', step: this.step, attempt: 0, owners: this.ownersFor(members), members },
        ];
      },
    });
    if (note) {
      const text = [standbySummary(a), ...a.overBudget.map((why) => `with any membership, ${why}: lower M (microbatches)`)].join('; ');
      if (text !== this.standbyNote) {
        if (text) this.log(text);
        else if (this.standbyNote) this.log('no peer on standby');
        this.standbyNote = text;
        this.events.emit('standby', { peers: a.standby.length, reasons: standbyReasons(a) });
      }
    }
    return a;
  }

  /**
   * step-begin's owners: for each microbatch, the index of its first-stage replica in members[0]: a round robin, or
   * with `ownersBySpeed` in proportion to the replicas' speeds. Local-steps mode always keeps the round robin over the
   * lanes: which microbatches a lane trains on is part of that mode's math (its loss scale, laneMicrobatches, and the
   * single-process reference src/model/local-sim.ts), so it must not follow measured speeds.
   */
  private ownersFor(members: string[][]): number[] {
    const index = members[0].map((_, i) => i);
    const bySpeed = this.opts.ownersBySpeed === true && !localSyncOf(this.run);
    const weights = bySpeed ? this.throughputs(members)[0] : index.map(() => 1);
    return ownersOf(this.run.M, index, weights);
  }

  private async runStep(step: number, attempt: number, members: string[][]): Promise<StepReport> {
    const t0 = performance.now();
    const { M } = this.run;
    const stepMs = this.opts.stepTimeoutMs ?? 60_000;
    this.cur = { step, attempt, members, owners: [] };
    this.mbDone = new Set();
    this.losses = new Map();
    this.sumsq = new Map();
    this.laneSumsq = new Map();
    this.stepDone = new Map();
    this.robustReports = new Map();
    const local = localSyncOf(this.run);
    const robust = trustOf(this.run).aggregation !== 'sum' && !local;
    const ownerIndex = this.ownersFor(members);
    const owners = stepOwners({ owners: ownerIndex, members });
    this.cur.owners = owners;
    const book = (this.book = new TraceBook(step, attempt, members));
    this.validation = null;
    // The loss of a microbatch is the one its route's last-stage peer reported (authorize.ts lossOf).
    this.routeOf = (mb) => {
      const r = book.route(mb, owners[mb] ?? '');
      return r.length === members.length ? r[r.length - 1] : null;
    };
    const all = members.flat();
    // Asked on every control message the coordinator is handed: scan the members only when someone's liveness changed.
    let seen = -1;
    let gone: string | undefined;
    const vanished = () => {
      if (seen !== this.aliveVersion) {
        seen = this.aliveVersion;
        gone = all.find((p) => !this.isAlive(p));
      }
      return gone ? `${gone} vanished during step ${step}` : null;
    };
    this.cp.sendControl({ type: 'step-begin', step, attempt, owners: ownerIndex, members }, '*');
    const deadline = this.deadlines.deadlineMs();
    this.liveness.watch(all, deadline);
    await this.waitFor(() => this.mbDone.size === M && this.losses.size === M, vanished, stepMs, `step ${step} microbatches`);
    this.deadlines.observe(performance.now() - t0);
    this.liveness.watch(all, deadline); // the reduce, traces and validations: watched until the update goes out
    this.cp.sendControl({ type: 'step-reduce', step, attempt, members }, '*');
    const lanes = local ? members[0].length : 1;
    await this.waitFor(
      () =>
        local
          ? this.laneSumsq.size === members.length * lanes
          : robust
            ? all.every((p) => this.robustReports.has(p))
            : this.sumsq.size === members.length,
      vanished,
      stepMs,
      `step ${step} reduce`,
    ).catch((err: unknown) => {
      if (robust && err instanceof Restart && /no progress/.test(err.message))
        for (const p of all) if (this.isAlive(p) && !this.robustReports.has(p)) this.strike(p, `no grad-sumsq for step ${step}`);
      throw err;
    });
    if (robust) await this.judgeRobustReduce(step, attempt, members);
    // Every member's trace, then neighbours' agreement and the sampled validations, before the update goes out.
    await this.waitFor(() => book.complete((p) => this.isAlive(p)), vanished, stepMs, `step ${step} traces`);
    const check = await this.checkStep(step, attempt, members, book, stepMs, vanished);
    if (check.restart) throw new Restart(check.restart);
    // Per-step mode: one global norm over the stages. Local-steps mode: each lane's norm over its stages, its own
    // clip scale (lane r = replica r of every stage); the report shows lane 0's.
    const clip = this.run.optimizer.gradClip;
    const norms = Array.from({ length: lanes }, (_, r) => {
      let sum = 0;
      if (!local) for (const v of this.sumsq.values()) sum += v === null ? Number.NaN : v;
      else
        for (let s = 0; s < members.length; s++) {
          const v = this.laneSumsq.get(`${s}:${r}`);
          sum += v === null || v === undefined ? Number.NaN : v;
        }
      return Math.sqrt(sum);
    });
    const scales = norms.map((n) => clipScale(n, clip));
    const [gradNorm, scale] = [norms[0], scales[0]];
    const lr = learningRate(step, this.run.schedule);
    this.liveness.unwatch();
    await this.writeAhead(step, attempt, members, { lr, gradNorm, scale, t0 });
    this.cp.sendControl(local ? { type: 'step-apply', step, attempt, scale, lr, scales } : { type: 'step-apply', step, attempt, scale, lr }, '*');
    // The update is out: from here a vanished member just stops counting.
    await this.waitFor(
      () => all.every((p) => !this.isAlive(p) || this.stepDone.has(p)),
      () => null,
      stepMs,
      `step ${step} apply`,
    ).catch((err: unknown) => {
      if (!(err instanceof Restart)) throw err;
      // A replica that did not apply this update is out of sync with its twins: it leaves the membership.
      for (const p of all) {
        if (!this.isAlive(p) || this.stepDone.has(p)) continue;
        this.log(`${p} did not confirm step ${step}: dropped from the membership`);
        this.vanish(p);
        this.cp.sendControl({ type: 'shutdown', reason: `did not apply step ${step}` }, p);
      }
    });
    let replicasAgree = true;
    const applied = members.map((m) => m.filter((p) => this.stepDone.has(p)));
    const synced = !!local && isSyncStep(step, local.H, this.run.steps);
    // Local-steps replicas differ between syncs by design: they must agree after each outer sync.
    if (synced) replicasAgree = await this.outerSync(step, applied);
    else if (!local) for (const m of applied) if (new Set(m.map((p) => this.stepDone.get(p))).size > 1) replicasAgree = false;
    if (!replicasAgree) this.log(`step ${step}: replicas disagree on their params digest`);
    let lossSum = 0;
    for (let mb = 0; mb < M; mb++) lossSum += this.lossOf(mb) ?? Number.NaN;
    const report: StepReport = {
      step,
      attempts: attempt + 1,
      loss: lossSum / M,
      lr,
      gradNorm,
      scale,
      members: applied,
      replicasAgree,
      ...(local ? { synced } : {}),
      ms: performance.now() - t0,
      time: applied.map((m) => meanStageTime(m.flatMap((p) => this.partsOf(p, step, attempt)))),
    };
    this.log(
      `step ${step}: loss ${report.loss.toFixed(4)} norm ${gradNorm.toFixed(4)} scale ${scale.toFixed(4)} ${report.ms.toFixed(0)} ms${attempt ? ` (${attempt + 1} attempts)` : ''}`,
    );
    this.committed = new Map(this.stepDone);
    // The step's verified work: the final attempt's agreeing traces, and the validations run to the end.
    const entries = applied.flatMap((m, stage) =>
      m.map((peerId) => ({
        peerId,
        stage,
        ...book.work(peerId),
        validations: check.done.get(peerId)?.validations ?? 0,
        recomputed: check.done.get(peerId)?.recomputed ?? 0,
      })),
    );
    this.events.emit('work', { step, entries });
    return report;
  }

  /** The time parts a member reported with its step-done of this attempt (none: an older peer, or none yet). */
  private partsOf(peerId: string, step: number, attempt: number): StageTime[] {
    const t = this.timings.get(peerId);
    return t && t.step === step && t.attempt === attempt && t.timing.parts ? [t.timing.parts] : [];
  }

  /** Trace agreement and the sampled validations of an attempt (src/coordinator/validation.ts). */
  private async checkStep(
    step: number,
    attempt: number,
    members: string[][],
    book: TraceBook,
    stepMs: number,
    vanished: () => string | null,
  ): Promise<StepCheck> {
    const v = new StepValidation({
      run: this.run,
      step,
      attempt,
      members,
      book,
      adapters: this.adapters,
      committed: this.committed,
      rotation: this.rotation,
      isAlive: (p) => this.isAlive(p),
      keyOf: (p) => this.cp.keyOf(p),
      send: (msg, to) => this.cp.sendControl(msg, to),
      wait: (done, what) =>
        this.waitFor(done, vanished, stepMs, what).then(
          () => true,
          (err: unknown) => {
            if (err instanceof Restart && /no progress/.test(err.message)) return false;
            throw err;
          },
        ),
      strike: (p, reason) => this.strike(p, reason),
      emitValidation: (ev) => this.events.emit('validation', ev),
      log: (s) => this.log(s),
    });
    this.validation = v;
    try {
      return await v.check();
    } finally {
      this.validation = null;
    }
  }

  /**
   * Local-steps mode: the outer sync after `step` (sync-begin, every lane replica's sync-done). Returns whether each
   * stage's replicas report the same params digest. A replica lost mid-sync ends the run: the others may already
   * have applied the outer step without its pseudo-gradient, and the lanes cannot be made equal again.
   */
  private async outerSync(step: number, members: string[][]): Promise<boolean> {
    this.syncStep = step;
    this.syncMembers = members;
    this.syncDone = new Map();
    const all = members.flat();
    this.cp.sendControl({ type: 'sync-begin', step, members }, '*');
    try {
      await this.waitFor(
        () => all.every((p) => this.syncDone.has(p)),
        () => {
          const gone = all.find((p) => !this.isAlive(p));
          return gone ? `${gone} vanished during the outer sync after step ${step}` : null;
        },
        this.opts.stepTimeoutMs ?? 60_000,
        `outer sync after step ${step}`,
      );
    } catch (err) {
      if (err instanceof Restart)
        throw new Error(`local-steps sync failed: ${err.message}; the replicas' weights cannot be reconciled`, { cause: err });
      throw err;
    }
    const agree = members.every((m) => new Set(m.map((p) => this.syncDone.get(p))).size <= 1);
    if (!agree) this.log(`outer sync after step ${step}: replicas disagree on their params digest`);
    return agree;
  }

  // ------------------------------------------------------------------------------------------- resume (adoption.ts)

  /** Resuming: a re-adoption in progress until the run goes on (claims are gathered by it). */
  private adoption: Adoption | null = null;
  /** The first attempt of the next step (above every attempt a re-adopted member claimed). */
  private firstAttempt = 0;
  /** Resuming: the saved run's write-ahead report (the step whose update had gone out), recovered by adopt(). */
  private resumeApplying: StepReport | null = null;
  /**
   * Write-ahead of the saved run (src/coordinator/run-saver.ts): awaited with the step's report before its update goes
   * out, so a coordinator gone after that point still has the report of a step its peers applied.
   */
  onApplying: ((report: StepReport) => Promise<void>) | null = null;
  /** The report of the step whose update went out and is not confirmed yet (saveState's `applying`). */
  private applying: StepReport | null = null;

  private async writeAhead(step: number, attempt: number, members: string[][], f: { lr: number; gradNorm: number; scale: number; t0: number }) {
    let lossSum = 0;
    for (let mb = 0; mb < this.run.M; mb++) lossSum += this.lossOf(mb) ?? Number.NaN;
    const { lr, gradNorm, scale, t0 } = f;
    const local = localSyncOf(this.run);
    const report: StepReport = {
      step,
      attempts: attempt + 1,
      loss: lossSum / this.run.M,
      lr,
      gradNorm,
      scale,
      members,
      replicasAgree: true,
      ...(local ? { synced: isSyncStep(step, local.H, this.run.steps) } : {}),
      ms: performance.now() - t0,
    };
    this.applying = report;
    await this.onApplying?.(report).catch((err: unknown) =>
      this.log(`step ${step}: write-ahead failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  }

  /** Resumed past a step whose update went out before the save of its report: that report, from the write-ahead. */
  private recoverApplied(step: number): void {
    const r = this.resumeApplying;
    this.resumeApplying = null;
    if (!r || r.step + 1 !== step || this.reports.some((x) => x.step === r.step)) return;
    this.log(`step ${r.step}'s update was applied before the coordinator left: its report recovered from the write-ahead`);
    this.reports.push(r);
    this.events.emit('step', r);
  }

  private restore(r: ResumeState): void {
    this.step = r.step;
    this.epoch = r.epoch;
    this.reports.push(...r.reports);
    this.strikeBook.restore(r.strikes, r.evicted);
    this.holdings.restore(r.holdings.map((h) => [h.peer, h.checkpoints] as const));
    this.resumeApplying = r.applying ?? null;
    this.adoption = new Adoption({
      runId: this.run.runId,
      stages: this.run.stages.length,
      step: r.step,
      digests: r.digests,
      membership: r.membership,
    });
  }

  /**
   * Asks the room's peers to re-announce themselves with their member claims (a resumed coordinator, or one whose
   * signaling connection came back: docs/resilience.md).
   */
  reannounce(): void {
    if (!this.closed) this.cp.sendControl({ type: 'reannounce', runId: this.run.runId, step: this.step }, '*');
  }

  /**
   * A peer-info with a member claim. Resuming: gathered for the plan. Running: a member we lost that comes back
   * keeps its stage and joins from a live replica. Returns false when the claim is not taken (a fresh join).
   */
  private claimed(peerId: string, msg: ControlOf<'peer-info'>, c: MemberClaim): boolean {
    const known = this.peers.get(peerId);
    if (known?.alive) return true; // already a member (e.g. a reannounce after a signaling reconnect)
    const why = this.adoption
      ? this.adoption.claim(peerId, c)
      : c.runId !== this.run.runId || c.stage >= this.run.stages.length
        ? 'not this run'
        : null;
    if (why) {
      this.log(`${peerId}'s member claim not adopted: ${why}`);
      return false;
    }
    this.peers.set(peerId, { peerId, stage: c.stage, throughput: msg.throughput ?? 1, state: 'assigned', alive: true });
    this.aliveVersion++;
    this.adapters.set(peerId, msg.adapter ?? '');
    this.log(`${peerId} re-adopted: stage ${c.stage}, ${c.step} steps applied (attempt ${c.attempt})`);
    this.cp.sendControl({ type: 'swarm-assign', stage: c.stage, run: this.run, adopt: true }, peerId);
    this.events.emit('assigned', { peerId, stage: c.stage });
    this.wake();
    return true;
  }

  /** Resuming: waits for the claims (every saved member back, or adoptWaitMs), then goes on where the plan says. */
  private async adopt(a: Adoption): Promise<void> {
    const waitMs = this.opts.adoptWaitMs ?? 15_000;
    // A flag, not a clock comparison: a timer may fire a little before performance.now() says it is due.
    let waited = false;
    const timer = setTimeout(() => {
      waited = true;
      this.wake();
    }, waitMs);
    this.log(`resuming run ${this.run.runId} at step ${this.step}: asking the swarm to re-announce`);
    this.reannounce();
    try {
      await this.waitFor(
        // Past the wait, a stage nobody claims is a lost stage: restored from checkpoints (stage-restore.ts).
        () => (a.plan() !== null && a.allBack()) || (waited && a.plan(true) !== null),
        () => null,
        Number.POSITIVE_INFINITY,
        'waiting for the swarm to re-announce',
      );
    } finally {
      clearTimeout(timer);
    }
    const plan = (a.plan() ?? a.plan(true)) as AdoptionPlan;
    const gone = a.missing();
    if (gone.length) this.log(`not back after ${waitMs} ms (gone): ${gone.join(', ')}`);
    for (const [peer] of plan.members) {
      const rec = this.peers.get(peer);
      if (rec) rec.state = 'member';
    }
    // Back to an older step (no stage has a claimant at the saved one): that step's reports are re-done.
    const redo = this.reports.findIndex((r) => r.step >= plan.step);
    if (redo >= 0) this.reports.splice(redo);
    this.step = plan.step;
    this.firstAttempt = plan.attempt;
    this.adoption = null;
    this.recoverApplied(plan.step);
    this.log(`re-adopted ${plan.members.size} member(s) at step ${plan.step}, ${plan.joiners.size} joining from them; attempt ${plan.attempt} next`);
    this.events.emit('adopted', { step: plan.step, attempt: plan.attempt, members: [...plan.members.keys()], joiners: [...plan.joiners.keys()] });
  }

  /** The run as it stands, for the saved run (src/coordinator/run-state.ts); call between steps or on `step`. */
  saveState(): Omit<ResumeState, 'run'> {
    // On the `step` event the step counter has not moved yet: the completed step is the last report's.
    const last = this.reports.at(-1);
    const step = last && last.step >= this.step ? last.step + 1 : this.step;
    const membership = this.members();
    const digests = membership.map((m) => {
      const ds = m.map((p) => this.committed.get(p)).filter((d): d is string => !!d);
      return ds.length && ds.every((d) => d === ds[0]) && !localSyncOf(this.run) ? ds[0] : null;
    });
    return {
      step,
      epoch: this.epoch,
      membership,
      digests,
      holdings: this.holdings.entries().map(([peer, checkpoints]) => ({ peer, checkpoints })),
      reports: [...this.reports],
      applying: this.applying,
      strikes: this.strikeBook.entries(),
      evicted: this.strikeBook.evictedIds,
    };
  }

  // ------------------------------------------------------------------------------------------- stage loss (stage-restore.ts)

  /** What the stage restorer may see and do of this coordinator. */
  private restoreHost(): RestoreHost {
    const run = () => this.run;
    return {
      // The run as it is now (planStages replaces its stages before step 0).
      get run() {
        return run();
      },
      holdings: this.holdings,
      reports: this.reports,
      getStep: () => this.step,
      setStep: (step) => {
        this.step = step;
      },
      members: () => this.members(),
      joining: () => [...this.peers.values()].filter((p) => p.alive && p.state === 'assigned').map((p) => ({ peer: p.peerId, stage: p.stage })),
      stageOf: (peer) => this.peers.get(peer)?.stage,
      isAlive: (peer) => this.isAlive(peer),
      send: (msg, to) => this.cp.sendControl(msg, to),
      reassign: (peer, stage) => {
        const rec = this.peers.get(peer);
        if (!rec) return;
        this.log(`${peer}: stage ${rec.stage} -> ${stage}`);
        rec.stage = stage;
        rec.state = 'assigned';
        this.cp.sendControl({ type: 'swarm-assign', stage, run: this.run }, peer);
        this.events.emit('assigned', { peerId: peer, stage });
      },
      establish: (plan) => this.establish(this.opts.readyTimeoutMs ?? 60_000, plan),
      waitUntil: async (done, deadline, what) => {
        // A timer may fire a little before performance.now() reaches the deadline: re-armed until it has.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const arm = () => {
          timer = setTimeout(() => (performance.now() >= deadline ? this.wake() : arm()), Math.max(1, Math.ceil(deadline - performance.now())));
        };
        arm();
        try {
          await this.waitFor(
            () => done() || performance.now() >= deadline,
            () => null,
            Number.POSITIVE_INFINITY,
            what,
          );
        } finally {
          clearTimeout(timer);
        }
        return done();
      },
      emitPaused: (ev) => this.events.emit('paused', ev),
      emitResumed: (ev) => this.events.emit('resumed', ev),
      log: (s) => this.log(s),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.offs) off();
    this.liveness.close();
    this.wake();
  }
}
