// The swarm's coordinator (docs/swarm.md). It never touches tensors: it runs over the control plane (a
// SignalingClient with role 'coordinator'), assigns joining peers a stage, announces membership, keeps the step
// counter, decides when a step is complete, collects losses, computes the global clip scale from the stages'
// gradient sums of squares, and re-runs a step (attempt + 1, microbatches re-owned by live first-stage replicas)
// when a member vanishes before the step's update was sent.
import { Emitter, type Unsubscribe } from '../net/emitter';
import type { ControlMessage, ControlOf } from '../protocol/messages';
import { PROTOCOL_VERSION } from '../protocol/version';
import { learningRate } from '../model/schedule';
import { assignStage } from './assignment';
import { trustOf, type RunConfig } from '../protocol/run-config';
import { lanesOf, localSyncOf } from '../swarm/local-sync';
import { isSyncStep } from '../model/outer-optimizer';
import { judgeRobust, StrikeBook, type RobustReport, type Striker } from './strikes';
import { lossOfReports, refuseReport, ReportGate, type AttemptView } from './authorize';
import { TraceBook } from './traces';
import { StepValidation, type StepCheck } from './validation';
import { Holdings } from './holdings';

/** What the coordinator needs of a SignalingClient (so tests can drive it with a fake). */
export interface ControlPlane {
  readonly peerId: string;
  on(event: 'control', handler: (ev: { from: string; msg: ControlMessage }) => void): Unsubscribe;
  on(event: 'peer-left', handler: (ev: { peerId: string }) => void): Unsubscribe;
  sendControl(msg: ControlMessage, to?: string): void;
  /** A member's public key (the signaling server's roster): the signatures in robust reports are checked with it. */
  keyOf(peerId: string): string | undefined;
}

export interface CoordinatorOptions {
  run: RunConfig;
  /** Peers that must have joined (and be assigned) before step 0 begins. */
  minPeers: number;
  /** A step attempt that makes no progress for this long is re-run (default 60 s). */
  stepTimeoutMs?: number;
  /** Members must report swarm-ready within this (default 60 s); laggards are dropped. */
  readyTimeoutMs?: number;
  log?: (s: string) => void;
}

export interface StepReport {
  step: number;
  /** Attempts it took (1 = no restart). */
  attempts: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping, and the clip factor applied. */
  gradNorm: number;
  scale: number;
  /** Peers per stage that applied the update. */
  members: string[][];
  /** Replicas of every stage reported the same params digest (local-steps mode: after the step's outer sync). */
  replicasAgree: boolean;
  /** Local-steps mode: the outer sync ran after this step. */
  synced?: boolean;
  ms: number;
}

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
  assigned: { peerId: string; stage: number };
  vanished: { peerId: string };
  /** A peer dropped something `peer` sent it (e.g. a payload its codec refuses). */
  'peer-report': { from: string; peer: string; reason: string };
};

interface PeerRecord {
  peerId: string;
  stage: number;
  throughput: number;
  /** Member of the running membership (linked up), or assigned and waiting to join at a step boundary. */
  state: 'assigned' | 'member';
  alive: boolean;
}

class Restart extends Error {
  override name = 'Restart';
}

export class Coordinator implements Striker {
  readonly events = new Emitter<CoordinatorEvents>();
  readonly run: RunConfig;
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
  private epoch = 0;
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

  constructor(
    private readonly cp: ControlPlane,
    opts: CoordinatorOptions,
  ) {
    this.opts = opts;
    this.run = opts.run;
    this.strikeBook = new StrikeBook(trustOf(opts.run).strikes);
    this.offs.push(
      cp.on('control', ({ from, msg }) => this.onControl(from, msg)),
      cp.on('peer-left', ({ peerId }) => {
        this.spoken.delete(peerId);
        this.vanish(peerId);
      }),
    );
    this.done = this.main();
    this.done.catch(() => undefined);
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
    return stages.map((ps) => ps.map((p) => this.peers.get(p)?.throughput ?? 1));
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
        if (msg.checkpoints) this.holdings.announce(from, msg.checkpoints);
        this.join(from, msg);
        break;
      case 'checkpoint-saved':
        this.holdings.add(from, msg);
        break;
      case 'swarm-ready':
        this.ready.set(from, msg.epoch);
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
        break;
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

  private refuse(peerId: string, reason: string): void {
    this.log(`refusing ${peerId}: ${reason}`);
    this.cp.sendControl({ type: 'refused', reason, protocol: PROTOCOL_VERSION }, peerId);
  }

  private join(peerId: string, msg: ControlOf<'peer-info'>): void {
    // Peers of version 1 sent no hello: their peer-info must not slip in as if it were ours.
    if (this.strikeBook.evicted(peerId)) return this.refuse(peerId, 'evicted from this run');
    if (!this.spoken.has(peerId))
      return this.refuse(peerId, `peer-info without a hello: the peer speaks a protocol older than ${PROTOCOL_VERSION}; update the peer`);
    const known = this.peers.get(peerId);
    if (known?.alive) return; // duplicate announcement
    if (known) this.peers.delete(peerId); // the same id back after it vanished: a fresh peer (its state is gone)
    const stages = this.run.stages.map((r, s) => ({
      layers: r.layerEnd - r.layerStart,
      throughputs: [...this.peers.values()].filter((p) => p.alive && p.stage === s).map((p) => p.throughput),
    }));
    const stage = assignStage(stages);
    const rec: PeerRecord = { peerId, stage, throughput: msg.throughput ?? 1, state: 'assigned', alive: true };
    this.peers.set(peerId, rec);
    this.adapters.set(peerId, msg.adapter ?? '');
    this.log(`${peerId} (${msg.platform}, ${Math.round(rec.throughput)} tok/s) -> stage ${stage}`);
    this.cp.sendControl({ type: 'swarm-assign', stage, run: this.run }, peerId);
    this.events.emit('assigned', { peerId, stage });
  }

  private vanish(peerId: string): void {
    const p = this.peers.get(peerId);
    if (!p || !p.alive) return;
    p.alive = false;
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
    if (p) p.alive = false;
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

  private isAlive(peerId: string): boolean {
    return this.peers.get(peerId)?.alive ?? false;
  }

  /**
   * Waits until `done()` holds. Throws Restart when `abort()` returns a reason; throws on timeout (Restart if
   * `restartOnTimeout`).
   */
  private waitFor(done: () => boolean, abort: () => string | null, timeoutMs: number, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.progressAt = performance.now();
      const check = () => {
        if (this.closed) return finish(new Error('coordinator closed'));
        const why = abort();
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
    // Start: enough peers assigned and no stage empty.
    await this.waitFor(
      () => {
        const live = [...this.peers.values()].filter((p) => p.alive);
        return live.length >= this.opts.minPeers && this.run.stages.every((_, s) => live.some((p) => p.stage === s));
      },
      () => null,
      Number.POSITIVE_INFINITY,
      'waiting for peers',
    );
    await this.establish(readyMs);
    while (this.step < this.run.steps) {
      if ([...this.peers.values()].some((p) => p.alive && p.state === 'assigned')) await this.establish(readyMs);
      let attempt = 0;
      for (;;) {
        if (this.closed) throw new Error('coordinator closed');
        // Local-steps mode: R lanes (the smallest replica count); replicas past it idle.
        const members = localSyncOf(this.run) ? lanesOf(this.members()) : this.members();
        const empty = members.findIndex((m) => m.length === 0);
        if (empty >= 0) throw new Error(`stage ${empty} has no live replica: its weights are lost, the run cannot continue`);
        try {
          const report = await this.runStep(this.step, attempt, members);
          this.reports.push(report);
          this.events.emit('step', report);
          break;
        } catch (err) {
          if (!(err instanceof Restart)) throw err;
          attempt++;
          this.log(`step ${this.step}: ${err.message}; re-running as attempt ${attempt}`);
          this.events.emit('restart', { step: this.step, attempt, reason: err.message });
        }
      }
      this.step++;
    }
    this.cur = null;
    if (!this.closed) this.cp.sendControl({ type: 'shutdown', reason: `run ${this.run.runId} complete` }, '*');
    return this.reports;
  }

  /**
   * Between steps: announce the membership (live members + peers waiting to join, appended to their stage), the
   * joiners' state sources, and wait for every one of them to report ready for this epoch.
   */
  private async establish(readyMs: number): Promise<void> {
    for (;;) {
      const current = this.members();
      const started = current.some((m) => m.length > 0);
      const stages = current.map((m) => [...m]);
      const joins: ControlOf<'swarm-members'>['joins'] = [];
      for (const p of this.peers.values()) {
        if (!p.alive || p.state !== 'assigned') continue;
        const source = current[p.stage][0];
        if (started && !source) {
          this.log(`${p.peerId} cannot join stage ${p.stage}: no live replica to copy the state from`);
          continue;
        }
        stages[p.stage].push(p.peerId);
        if (started) joins.push({ peer: p.peerId, stage: p.stage, source });
      }
      const epoch = ++this.epoch;
      const everyone = stages.flat();
      this.log(
        `membership epoch ${epoch}: ${stages.map((m, s) => `s${s}=[${m.join(',')}]`).join(' ')}${joins.length ? ` joins ${joins.map((j) => `${j.peer}<-${j.source}`).join(',')}` : ''}`,
      );
      this.cp.sendControl({ type: 'swarm-members', epoch, stages, speeds: this.throughputs(stages), joins, step: this.step }, '*');
      this.events.emit('membership', { epoch, stages, joins: joins.map((j) => j.peer) });
      try {
        await this.waitFor(
          () => everyone.every((p) => !this.isAlive(p) || this.ready.get(p) === epoch),
          () => (everyone.some((p) => !this.isAlive(p)) ? 'a member vanished while linking up' : null),
          readyMs,
          `waiting for swarm-ready of epoch ${epoch}`,
        );
      } catch (err) {
        if (!(err instanceof Restart)) throw err;
        for (const p of everyone) {
          if (this.isAlive(p) && this.ready.get(p) !== epoch && /no progress/.test(err.message)) {
            this.log(`${p} did not report ready for epoch ${epoch}: dropped`);
            this.vanish(p);
          }
        }
        continue;
      }
      for (const p of everyone) {
        const rec = this.peers.get(p);
        if (rec?.alive) rec.state = 'member';
      }
      return;
    }
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
    const firsts = members[0];
    const owners = Array.from({ length: M }, (_, k) => firsts[k % firsts.length]);
    this.cur.owners = owners;
    const book = (this.book = new TraceBook(step, attempt, members));
    this.validation = null;
    // The loss of a microbatch is the one its route's last-stage peer reported (authorize.ts lossOf).
    this.routeOf = (mb) => {
      const r = book.route(mb, owners[mb] ?? '');
      return r.length === members.length ? r[r.length - 1] : null;
    };
    const all = members.flat();
    const vanished = () => {
      const gone = all.find((p) => !this.isAlive(p));
      return gone ? `${gone} vanished during step ${step}` : null;
    };
    this.cp.sendControl({ type: 'step-begin', step, attempt, owners, members }, '*');
    await this.waitFor(() => this.mbDone.size === M && this.losses.size === M, vanished, stepMs, `step ${step} microbatches`);
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
    const scales = norms.map((n) => (!Number.isFinite(n) ? 0 : clip > 0 ? Math.min(1, clip / (n + 1e-6)) : 1));
    const [gradNorm, scale] = [norms[0], scales[0]];
    const lr = learningRate(step, this.run.schedule);
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.offs) off();
    this.wake();
  }
}
