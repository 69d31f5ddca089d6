// A swarm peer, Node or browser: SwarmSignaling (control plane) + PeerNetwork (WebRTC links) + StageRuntime.
// At join it times a couple of forward/backward passes of a tiny stage (its throughput, tokens/s) and sends
// peer-info; the coordinator answers swarm-assign (run config + stage); swarm-members makes it link up with the
// peers it needs (copying its stage's weights + AdamW state from a live replica when it joins a running swarm) and
// report swarm-ready; the step messages then drive the StageRuntime. Browser-safe: the Node pieces (WebSocket,
// RTC factory, GPU compute) are passed in. The GPU work goes through a ComputeBackend (src/model/stage-compute.ts):
// a Runtime in this process, or a Web Worker (src/swarm/worker-stage-compute.ts) in a browser tab.
import { parseRunConfig, type RunConfig } from '../protocol/run-config';
import type { Runtime } from '../gpu/runtime';
import { Emitter } from '../net/emitter';
import type { ControlMessage, ControlOf } from '../protocol/messages';
import { PROTOCOL_VERSION } from '../protocol/version';
import { PeerNetwork, type PeerNetworkOptions } from '../net/peer-network';
import type { RtcFactory } from '../net/rtc-session';
import type { WebSocketConstructor } from '../net/signaling-client';
import type { Identity } from '../net/identity';
import { connectSwarm, type SwarmSignaling } from '../protocol/control-codec';
import { WireMeter } from '../net/wire-meter';
import { wireBytesOf } from '../protocol/wire-categories';
import { CUSTODY_PULL_KIND, dialsFirst, LinkAbandonedError, Links, neededPeers } from './links';
import type { CheckpointStore } from './checkpoints';
import { PeerCheckpoints } from './peer-checkpoints';
import { TensorPolicy } from './tensor-policy';
import { CoordinatorWatch } from './coordinator-watch';
import { benchmarkRuntime, LocalComputeBackend, type ComputeBackend } from '../model/stage-compute';
import { StageRuntime, stageSpecOf } from './stage-runtime';
import { teardownStage } from './stage-move';
import { slowBackend, type SlowSpec } from './slow-compute';
import { layoutOf, receiveStageState, sendStageState } from './state-transfer';
import { attackingBackend, ReportForger, RobustFramer, seedOfId, type ControlForger, type AttackLog, type AttackSpec } from './adversary';

export interface SwarmPeerOptions {
  url: string;
  room: string;
  /** Fingerprint (64 hex) of the room's coordinator key: the only coordinator this peer obeys. */
  coordinator: string;
  /** This peer's key pair; its id is this peer's id (default: a fresh ephemeral one). */
  identity?: Identity;
  /** The room's join token, if the coordinator set one. */
  token?: string;
  WebSocket?: WebSocketConstructor;
  rtcFactory: RtcFactory;
  /** This peer's own GPU runtime in this process (destroyed by close()). Give this or `compute`. */
  runtime?: () => Promise<Runtime>;
  /** This peer's compute backend, e.g. a Web Worker (destroyed by close()). Give this or `runtime`. */
  compute?: () => Promise<ComputeBackend>;
  /** Training tokens of the run (the first stage reads inputs from them, the last stage targets). */
  tokens: (run: RunConfig) => Uint32Array | Promise<Uint32Array>;
  platform: 'node' | 'browser';
  /** Skip the join benchmark and announce this throughput (tokens/s). */
  throughput?: number;
  /** Memory this peer lets its model slice use, in bytes (peer-info memoryBytes): it is given only a stage that fits. */
  memoryBytes?: number;
  network?: PeerNetworkOptions;
  /** Link-up / state-transfer deadline (default 30 s). */
  linkTimeoutMs?: number;
  reduceTimeoutMs?: number;
  log?: (s: string) => void;
  /** Tests and demos only: this peer attacks as `attack` says (src/swarm/adversary.ts); `attackLog` counts it. */
  attack?: AttackSpec;
  attackLog?: AttackLog;
  /** How long a member waits for its coordinator to come back after it left (default 600 s; coordinator-watch.ts). */
  coordinatorWaitMs?: number;
  /**
   * Where this peer keeps its stage checkpoints (docs/resilience.md; src/swarm/peer-checkpoints.ts): Node
   * src/cli/checkpoint-dir.ts, a tab src/ui/idb-checkpoints.ts. Without one it saves nothing and cannot restore.
   */
  checkpoints?: CheckpointStore;
  /** Tests and demos only: this peer's compute is `slow.factor` times slower (src/swarm/slow-compute.ts; read live). */
  slow?: SlowSpec;
}

/** What a peer is doing (UI). */
export type SwarmPeerState =
  | 'benchmarking'
  | 'joining'
  | 'assigned'
  | 'linking'
  | 'ready'
  | 'training'
  /** The coordinator left: waiting (bounded, `coordinatorWaitLeftMs`) for it to come back (docs/resilience.md). */
  | 'waiting-coordinator'
  | 'finished'
  | 'error'
  | 'closed';

export interface SwarmProgress {
  state: SwarmPeerState;
  /** Steps this peer has applied (the run's step counter as seen here). */
  step: number;
  /** Last loss known here: the coordinator's step report if it sends one, else this (last-stage) peer's microbatches. */
  loss: number | null;
  /** Microbatch forwards / backwards computed here. */
  forward: number;
  backward: number;
  /** Tokens this peer computed (its own microbatches' forwards x B x T) per second, over the last step. */
  tokensPerSec: number;
  /** Tokens of the whole step (M x B x T) per second, over the last step as seen here. */
  runTokensPerSec: number;
  /** State waiting-coordinator: ms left before this peer gives up on its coordinator. */
  coordinatorWaitLeftMs?: number;
}

export type SwarmPeerEvents = {
  state: SwarmPeerState;
  /** After every applied step (and on coordinator step reports). */
  progress: SwarmProgress;
  assigned: { stage: number; run: RunConfig };
  ready: { epoch: number };
  'state-received': { from: string; step: number; ms: number };
  /** Its stage restored from its own stored checkpoint (swarm-members.restores). */
  restored: { stage: number; step: number; digest: string };
  'state-sent': { to: string; ms: number };
  shutdown: { reason?: string };
  error: Error;
  /** Its coordinator left and did not come back within coordinatorWaitMs: the peer ends (the CLI exits 3). */
  'coordinator-lost': Error;
};

/** Tokens/s of a tiny 1-layer stage (forward + backward), best of `reps` after a warm-up. */
export function benchmarkThroughput(rt: Runtime, reps = 2): Promise<number> {
  return benchmarkRuntime(rt, reps);
}

export class SwarmPeer {
  readonly events = new Emitter<SwarmPeerEvents>();
  readonly links: Links;
  runtime: StageRuntime | null = null;
  run: RunConfig | null = null;
  throughput = 0;
  state: SwarmPeerState = 'joining';
  readonly progress: SwarmProgress = { state: 'joining', step: 0, loss: null, forward: 0, backward: 0, tokensPerSec: 0, runTokensPerSec: 0 };
  private stepT0 = 0;
  private forwardAtBegin = 0;
  /** Last-stage peers: losses of their own microbatches per step (latest attempt). */
  private stepLosses = new Map<number, { attempt: number; sum: number; n: number }>();
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  /** forge-reports adversaries only (tests and demos). */
  private readonly forger: ControlForger | null = null;
  private readonly finishedP: Promise<{ reason?: string }>;
  readonly tensorPolicy: TensorPolicy;
  /** Stage checkpoints: saves, restores, custody (src/swarm/peer-checkpoints.ts). */
  readonly checkpoints: PeerCheckpoints;
  /** Tensors refused per sender (tensor-policy.ts). */
  readonly refusedTensors = new Map<string, number>();

  private constructor(
    readonly signaling: SwarmSignaling,
    readonly network: PeerNetwork,
    readonly backend: ComputeBackend,
    private readonly opts: SwarmPeerOptions,
    /** Bytes this peer sends (every link and its signaling connection); reported per step in step-done. */
    readonly wire: WireMeter = new WireMeter(),
  ) {
    // Links and tensors only from the current membership, only of the kinds each member may send (tensor-policy.ts).
    this.tensorPolicy = new TensorPolicy(signaling.peerId);
    network.setAccept((id) => this.tensorPolicy.isMember(id));
    // A link whose ICE never connected (nat-failure.ts) is not retried: the coordinator learns it at once and ends the
    // run with its message. The dialer's side reports it through members()'s rejection.
    network.events.on('nat-failed', ({ role, error }) => role === 'answerer' && this.report(error));
    network.events.on('linked', ({ peerId, local, remote }) => this.log(`link to ${peerId} open over a ${local} -> ${remote} candidate pair`));
    this.links = new Links(
      network,
      (from, x) => (x.kind === CUSTODY_PULL_KIND ? this.checkpoints.onPull(from, x, this.links.get(from)) : this.runtime?.onTensor(from, x)),
      (peer, info) => {
        this.log(`link to ${peer} closed (${info.reason})`);
        // A current member's link died (heartbeat) or broke (channel): the coordinator pings it at once
        // (docs/resilience.md, frozen peers). A goodbye ('remote') or our own close is no failure.
        const failed = info.reason === 'dead' || info.reason === 'channel';
        if (failed && this.tensorPolicy.isMember(peer)) this.send({ type: 'link-down', peer, reason: info.reason.slice(0, 256) });
      },
      (from, kind) => {
        const why = this.tensorPolicy.refusal(from, kind);
        if (why) this.refusedTensor(from, why);
        return why === null;
      },
    );
    this.checkpoints = new PeerCheckpoints({
      store: opts.checkpoints,
      self: signaling.peerId,
      links: this.links,
      policy: this.tensorPolicy,
      run: () => this.run,
      send: (m) => this.send(m),
      log: (s) => this.log(s),
      linkTimeoutMs: opts.linkTimeoutMs ?? 30_000,
    });
    this.finishedP = new Promise((resolve) => this.events.once('shutdown', resolve));
    this.watch = this.watchCoordinator(opts.coordinatorWaitMs);
    if (opts.attack?.mode === 'forge-reports') {
      this.forger = new ReportForger(
        { peerId: () => this.peerId, stage: () => this.runtime?.stageIndex ?? null, stages: () => this.run?.stages.length ?? 1 },
        (m) => {
          if (!this.closed && this.signaling.isUsable) this.signaling.sendControl(m);
        },
        opts.attackLog,
      );
    }
    if (opts.attack?.mode === 'frame-robust') this.forger = new RobustFramer({ peerId: () => this.peerId }, opts.attackLog);
    signaling.on('control', ({ msg }) => {
      // Whatever the coordinator's message makes us do, a throw ends as a reported error, never the process.
      try {
        this.onControl(msg);
      } catch (err) {
        this.report(err);
      }
    });
    // Unsigned, mis-signed, replayed or not the coordinator's: SignedControl drops, counts and logs them.
    // A peer that left the room never dials: stop waiting for its link at once.
    signaling.on('peer-left', ({ peerId }) => this.links.abandon((p) => p !== peerId, 'it left the room'));
  }

  /**
   * Joins the room, benchmarks, announces itself; training starts when the coordinator says so. `onState` sees the
   * states before the peer exists (benchmarking, joining).
   */
  static async join(opts: SwarmPeerOptions & { onState?: (s: SwarmPeerState) => void }): Promise<SwarmPeer> {
    let backend: ComputeBackend;
    if (opts.compute) backend = await opts.compute();
    else if (opts.runtime) backend = new LocalComputeBackend(await opts.runtime());
    else throw new Error('SwarmPeer.join: give `runtime` or `compute`');
    if (opts.slow) backend = slowBackend(backend, opts.slow);
    if (opts.attack) backend = attackingBackend(backend, opts.attack, seedOfId(opts.identity?.id ?? 'adversary'), opts.attackLog);
    let sig: SwarmSignaling | undefined;
    try {
      let throughput = opts.throughput;
      if (throughput === undefined) {
        opts.onState?.('benchmarking');
        throughput = await backend.benchmark();
      }
      opts.onState?.('joining');
      const wire = new WireMeter();
      sig = await connectSwarm(opts.url, {
        room: opts.room,
        role: 'peer',
        coordinator: opts.coordinator,
        identity: opts.identity,
        token: opts.token,
        WebSocket: opts.WebSocket,
        meter: wire,
        log: opts.log,
      });
      const signaling = sig;
      const net = new PeerNetwork(signaling.signaling, opts.rtcFactory, { ...opts.network, transport: { ...opts.network?.transport, meter: wire } });
      const peer = new SwarmPeer(sig, net, backend, opts, wire);
      peer.throughput = throughput;
      const announceSoon = (): void => void peer.announce().catch((e: unknown) => peer.log(`announce failed: ${String(e)}`));
      if (sig.coordinatorId) announceSoon();
      else {
        // No coordinator in the room yet (a tab opened before the run): announce when one arrives.
        peer.log('waiting for a coordinator');
        const off = sig.on('peer-joined', (p) => {
          if (p.role !== 'coordinator' || peer.closed) return;
          off();
          announceSoon();
        });
      }
      return peer;
    } catch (err) {
      sig?.close();
      await backend.destroy().catch(() => undefined);
      throw err;
    }
  }

  /** A tensor a member may not send us: dropped at the link, and its sender reported (the first few per sender). */
  private refusedTensor(from: string, why: string): void {
    const n = (this.refusedTensors.get(from) ?? 0) + 1;
    this.refusedTensors.set(from, n);
    if (n > 5 && n % 100 !== 0) return;
    this.log(`refused a tensor from ${from} (${n} so far): ${why}`);
    this.send({ type: 'peer-report', peer: from, reason: `refused tensor: ${why}`.slice(0, 512) });
  }

  private setState(s: SwarmPeerState): void {
    if (this.state === s) return;
    this.state = s;
    this.progress.state = s;
    this.events.emit('state', s);
    this.events.emit('progress', { ...this.progress });
  }

  get peerId(): string {
    return this.signaling.peerId;
  }

  /** Resolves when the coordinator announces the end of the run. */
  finished(): Promise<{ reason?: string }> {
    return this.finishedP;
  }

  private log(s: string): void {
    this.opts.log?.(`[${this.peerId}] ${s}`);
  }

  /** The newest membership epoch received (an older epoch's failure is not reported). */
  private latestEpoch = 0;

  private report(err: unknown): void {
    if (this.closed) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.log(`error: ${e.message}`);
    this.setState('error');
    this.events.emit('error', e);
    try {
      this.signaling.sendControl({ type: 'status', state: 'error', detail: e.message.slice(0, 1000) });
    } catch {
      // signaling gone
    }
  }

  private send(sent: ControlMessage): void {
    // isUsable: while the signaling server restarts the message waits in the client's queue (docs/resilience.md).
    if (this.closed || !this.signaling.isUsable) return;
    const msg = this.forger ? this.forger.outgoing(sent) : sent;
    // Wire accounting: a step-done (or sync-done) carries the bytes sent since the previous one (its own go in the next).
    const counted = msg.type === 'step-done' || msg.type === 'sync-done';
    this.signaling.sendControl(counted ? { ...msg, wire: wireBytesOf(this.wire.take()) } : msg);
  }

  private onControl(msg: ControlMessage): void {
    if (this.closed) return;
    this.forger?.observe(msg);
    switch (msg.type) {
      case 'swarm-assign':
      case 'swarm-members':
        if (msg.type === 'swarm-members') {
          // The membership counts at once (links from its members must be accepted while we are still busy).
          this.tensorPolicy.update(msg);
          this.checkpoints.setMembership(msg.stages);
          this.links.closeOthers((p) => this.tensorPolicy.isMember(p), `it is not in membership epoch ${msg.epoch}`);
          this.latestEpoch = Math.max(this.latestEpoch, msg.epoch);
        }
        // Ordered and possibly slow (building the stage, linking up, state transfer).
        this.chain = this.chain
          .then(() => (msg.type === 'swarm-assign' ? this.assign(msg) : this.members(msg)))
          .catch((e: unknown) => {
            // An epoch the coordinator already replaced, or one a member left while we linked up (the coordinator sees it
            // leave and announces the next): not an error of this peer.
            if (msg.type === 'swarm-members' && (msg.epoch < this.latestEpoch || e instanceof LinkAbandonedError))
              this.log(`membership epoch ${msg.epoch} not joined: ${String(e)}`);
            else this.report(e);
          });
        return;
      case 'shutdown':
        this.setState('finished');
        this.events.emit('shutdown', { reason: msg.reason });
        return;
      case 'custody':
        // In the background: a copy of a stage's checkpoint to its keeper (never delays the membership or a step).
        this.checkpoints.onCustody(msg);
        return;
      case 'ping':
        // At once, whatever the stage is doing: its GPU work is asynchronous, this handler runs on the event loop.
        this.send({ type: 'pong', nonce: msg.nonce });
        return;
      case 'refused':
        this.refused(msg.reason, msg.protocol);
        return;
      case 'step-report':
        this.onStepReport(msg);
        return;
      case 'status':
      case 'reannounce': // coordinator-watch.ts
        return;
      default:
        // (An error state is not terminal: the coordinator re-runs a failed step, training goes on.)
        if (msg.type === 'step-begin' && (this.state === 'ready' || this.state === 'error')) this.setState('training');
        if (msg.type === 'step-begin' && msg.attempt === 0) {
          this.stepT0 = performance.now();
          this.forwardAtBegin = this.runtime?.counters.forward ?? 0;
        }
        // Step messages: after any pending assign/membership work.
        if (this.runtime) this.runtime.onControl(msg);
        else void this.chain.then(() => this.runtime?.onControl(msg));
    }
  }

  private async assign(msg: ControlOf<'swarm-assign'>): Promise<void> {
    const run = parseRunConfig(msg.run);
    if (this.runtime) {
      if (this.runtime.stageIndex === msg.stage && this.run?.runId === run.runId) return;
      if (this.run?.runId !== run.runId) throw new Error(`already training stage ${this.runtime.stageIndex} of ${this.run?.runId}, not ${run.runId}`);
      // Moved to another stage of the run (live rebalancing): drop this one; the next membership brings its state.
      const old = this.runtime;
      this.runtime = null;
      this.log(`moving from stage ${old.stageIndex} to stage ${msg.stage}`);
      await teardownStage(old);
    }
    this.run = run;
    // The first stage samples its microbatches' inputs, the last their targets (they never cross the network).
    const tokens = msg.stage === 0 || msg.stage === run.stages.length - 1 ? await this.opts.tokens(run) : undefined;
    const compute = await this.backend.createStage(stageSpecOf(run, msg.stage));
    this.runtime = new StageRuntime({
      compute,
      run,
      stage: msg.stage,
      peerId: this.peerId,
      links: this.links,
      send: (m) => this.send(m),
      tokens,
      reduceTimeoutMs: this.opts.reduceTimeoutMs,
      signer: this.signaling.identity,
      keyOf: (id) => this.signaling.keyOf(id),
      log: this.opts.log,
      onError: (e) => this.report(e),
    });
    const sr = this.runtime;
    // After a move (live rebalancing) the counters go on from the old stage's.
    const base = { forward: this.progress.forward, backward: this.progress.backward };
    sr.events.on('forward', () => {
      this.progress.forward = base.forward + sr.counters.forward;
    });
    sr.events.on('backward', () => {
      this.progress.backward = base.backward + sr.counters.backward;
    });
    sr.events.on('loss', ({ step, attempt, loss }) => {
      let e = this.stepLosses.get(step);
      if (!e || e.attempt < attempt) this.stepLosses.set(step, (e = { attempt, sum: 0, n: 0 }));
      if (e.attempt === attempt && loss !== null) {
        e.sum += loss;
        e.n++;
      }
    });
    sr.events.on('applied', ({ step }) => this.onApplied(step));
    this.checkpoints.attach(sr); // after onApplied: progress first, then the save is queued
    await this.runtime.idle();
    this.setState('assigned');
    this.log(`assigned stage ${msg.stage} [${run.stages[msg.stage].layerStart}, ${run.stages[msg.stage].layerEnd})`);
    this.events.emit('assigned', { stage: msg.stage, run });
  }

  private async members(msg: ControlOf<'swarm-members'>): Promise<void> {
    const sr = this.runtime;
    if (!sr) return;
    if (msg.epoch < this.latestEpoch) return; // replaced by a newer membership while queued
    const s = sr.stageIndex;
    if (!msg.stages[s]?.includes(this.peerId)) return; // not part of this epoch (e.g. waiting for a source)
    sr.setSpeeds(msg.stages, msg.speeds);
    if (this.state !== 'training') this.setState('linking');
    const timeoutMs = this.opts.linkTimeoutMs ?? 30_000;
    // Restores first (a restored peer may be the join source below): its own checkpoint, from its store.
    let readyDigest = await this.checkpoints.restore(msg, sr);
    if (readyDigest !== undefined) {
      this.progress.step = sr.stepsDone;
      this.events.emit('restored', { stage: s, step: sr.stepsDone, digest: readyDigest });
    }
    const need = neededPeers(msg.stages, this.peerId, s, msg.joins);
    await Promise.all(
      need.map((p) =>
        this.links.link(p, dialsFirst(msg.stages, this.peerId, p), timeoutMs).catch((e: unknown) => {
          // A member that left the room fails our dial or never dials us: the coordinator sees it go and re-plans.
          if (!this.signaling.peers.has(p) && !(e instanceof LinkAbandonedError)) throw new LinkAbandonedError(`${p} left the room: ${String(e)}`);
          throw e;
        }),
      ),
    );
    const store = sr.stage.params;
    for (const j of msg.joins) {
      if (j.source === this.peerId && j.checkpoint !== undefined) {
        // From a stored checkpoint (a lost stage restored; this peer may be of another stage, a custodian).
        const t0 = performance.now();
        const t = this.links.get(j.peer);
        if (!t) throw new Error(`no link to joining replica ${j.peer}`);
        await this.checkpoints.sendStored(t, sr.run.runId, j.stage, j.checkpoint);
        this.events.emit('state-sent', { to: j.peer, ms: performance.now() - t0 });
      } else if (j.source === this.peerId) {
        // Between steps: my state is quiescent (the coordinator starts no step before everyone is ready).
        const t0 = performance.now();
        await sr.idle();
        const [params, m, v] = [await store.readFlat('params'), await store.readFlat('m'), await store.readFlat('v')];
        const layout = layoutOf(store);
        const t = this.links.get(j.peer);
        if (!t) throw new Error(`no link to joining replica ${j.peer}`);
        const outer = await sr.readOuter();
        await sendStageState(t, { params, m, v, step: msg.step, layout, ...(outer ? { outer } : {}) }, { stage: s, runId: sr.run.runId });
        this.events.emit('state-sent', { to: j.peer, ms: performance.now() - t0 });
      }
      if (j.peer === this.peerId) {
        const t0 = performance.now();
        const t = this.links.get(j.source);
        if (!t) throw new Error(`no link to state source ${j.source}`);
        const got = await receiveStageState(t, { timeoutMs, expectLayout: layoutOf(store), expectOuter: sr.localSteps });
        this.tensorPolicy.stateReceived();
        if (got.step !== msg.step) throw new Error(`state from ${j.source} is at step ${got.step}, the run is at ${msg.step}`);
        await sr.loadState(got);
        sr.setStepsDone(got.step);
        this.progress.step = got.step;
        await sr.idle();
        readyDigest = got.digest;
        this.log(`received stage ${s} state from ${j.source} (step ${got.step}, digest ${got.digest})`);
        this.events.emit('state-received', { from: j.source, step: got.step, ms: performance.now() - t0 });
      }
    }
    this.wasMember = true;
    this.send({ type: 'swarm-ready', epoch: msg.epoch, ...(readyDigest !== undefined ? { digest: readyDigest } : {}) });
    if (this.state !== 'training') this.setState('ready');
    this.events.emit('ready', { epoch: msg.epoch });
  }

  private onApplied(step: number): void {
    const run = this.run;
    this.progress.step = step + 1;
    const dt = performance.now() - this.stepT0;
    if (run && this.stepT0 > 0 && dt > 0) {
      const own = (this.runtime?.counters.forward ?? 0) - this.forwardAtBegin;
      this.progress.tokensPerSec = (own * run.B * run.T * 1000) / dt;
      this.progress.runTokensPerSec = (run.M * run.B * run.T * 1000) / dt;
    }
    const l = this.stepLosses.get(step);
    this.stepLosses.delete(step);
    if (l && l.n > 0 && !this.reportedLoss.has(step)) this.progress.loss = l.sum / l.n;
    this.events.emit('progress', { ...this.progress });
  }

  /** Steps the coordinator reported a loss for (the whole step's mean beats this peer's own microbatches). */
  private reportedLoss = new Set<number>();

  /** Waits for a coordinator that left, re-announces when it is back (src/swarm/coordinator-watch.ts). */
  private readonly watch: CoordinatorWatch;
  /** This peer has been in a membership of its run (a coordinator that comes back may re-adopt it). */
  private wasMember = false;
  private stateBeforeWait: SwarmPeerState | null = null;

  private watchCoordinator(waitMs: number | undefined): CoordinatorWatch {
    return new CoordinatorWatch({
      signaling: this.signaling,
      waitMs,
      position: () =>
        this.run && this.runtime && !this.closed && this.state !== 'finished' ? { runId: this.run.runId, step: this.runtime.stepsDone } : null,
      reannounce: () => void this.announce().catch((e: unknown) => this.log(`re-announce failed: ${String(e)}`)),
      waiting: (leftMs) => {
        if (this.state === 'finished' || this.state === 'closed') return;
        if (leftMs === null) {
          delete this.progress.coordinatorWaitLeftMs;
          this.setState(this.stateBeforeWait ?? 'ready');
          this.stateBeforeWait = null;
          return;
        }
        this.stateBeforeWait ??= this.state;
        this.progress.coordinatorWaitLeftMs = leftMs;
        if (this.state === 'waiting-coordinator') this.events.emit('progress', { ...this.progress });
        else this.setState('waiting-coordinator');
      },
      giveUp: (err) => {
        this.log(err.message);
        this.events.emit('coordinator-lost', err);
        this.setState('finished');
        this.events.emit('shutdown', { reason: err.message });
      },
      log: (s) => this.log(s),
    });
  }

  /**
   * hello + peer-info: at join, and again for a coordinator that came back, then with this peer's member claim when it
   * has been a member (the coordinator re-adopts it). peer-info carries the stage checkpoints it holds (a lost stage is
   * restored from them, a reloaded tab resumes from its own) and its adapter (validations compare bitwise within an
   * adapter kind, within the run's tolerance across kinds).
   */
  private async announce(): Promise<void> {
    const checkpoints = await this.checkpoints.refs();
    const binding = this.backend.adapter?.limits.maxStorageBufferBindingSize;
    const sr = this.runtime;
    const member =
      sr && this.run && this.wasMember
        ? { runId: this.run.runId, stage: sr.stageIndex, step: sr.stepsDone, attempt: sr.position.attempt, digest: sr.position.digest }
        : undefined;
    this.send({ type: 'hello', protocol: PROTOCOL_VERSION });
    this.send({
      type: 'peer-info',
      platform: this.opts.platform,
      gpu: true,
      throughput: this.throughput,
      ...(this.opts.memoryBytes !== undefined ? { memoryBytes: Math.floor(this.opts.memoryBytes) } : {}),
      ...(binding !== undefined ? { maxBindingBytes: binding } : {}),
      adapter: this.backend.adapter?.key,
      ...(checkpoints ? { checkpoints } : {}),
      ...(member ? { member } : {}),
    });
  }

  /** The coordinator will not have us (another protocol version): say so loudly and end, as after a shutdown. */
  private refused(reason: string, protocol: number): void {
    const err = new Error(`refused by the coordinator (protocol ${protocol}, this peer ${PROTOCOL_VERSION}): ${reason}`);
    this.log(err.message);
    this.setState('error');
    this.events.emit('error', err);
    this.setState('finished');
    this.events.emit('shutdown', { reason: err.message });
  }

  private onStepReport({ step, loss }: ControlOf<'step-report'>): void {
    this.progress.step = Math.max(this.progress.step, step + 1);
    if (loss !== null) {
      this.progress.loss = loss;
      this.reportedLoss.add(step);
      if (this.reportedLoss.size > 64) this.reportedLoss.delete(Math.min(...this.reportedLoss));
    }
    this.events.emit('progress', { ...this.progress });
  }

  /**
   * Saves this peer's stage now, as it is (exit paths: SIGTERM/SIGINT in Node, pagehide in a tab), after a save being
   * written; resolves true when stored (at once without a store or a stage), false when it failed or took over `ms`
   * (exit paths: a hung disk or a stage busy with a step must not keep a leaving peer in the swarm). Call before
   * close(). Never rejects.
   */
  async saveNow(ms = Number.POSITIVE_INFINITY): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const save = this.checkpoints.saveNow().then(
      () => true,
      (e: unknown) => {
        this.log(`checkpoint on exit failed: ${String(e)}`);
        return false;
      },
    );
    if (!Number.isFinite(ms)) return save;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    try {
      return await Promise.race([save, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Leaves cleanly: links, signaling, GPU. */
  close(): void {
    if (this.closed) return;
    this.setState('closed');
    this.closed = true;
    this.watch.close();
    this.runtime?.close();
    this.links.close();
    this.network.close();
    this.signaling.close();
    // Let queued GPU work settle before the device goes away.
    const backend = this.backend;
    const idle = this.runtime?.idle() ?? Promise.resolve();
    void idle.finally(() => backend.destroy().catch(() => undefined));
  }
}
