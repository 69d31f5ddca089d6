// A simulated swarm peer: it speaks the real control protocol (hello, peer-info, swarm-ready, mb-loss, mb-done,
// step-trace with real signed payload digests, grad-sumsq, validation, step-done, sync-done, pong) the way
// src/swarm/peer.ts and src/swarm/stage-runtime.ts do, in the run's sync mode (per-step all-reduce, or local steps:
// lanes, per-lane clip scales, an all-gather of the sync codec's payloads every H steps), but computes nothing: a
// pass takes its tokens over the peer's measured throughput in virtual time, a boundary payload its bytes over the
// uplink plus the one-way latency, and the digests it reports come from sim-compute.ts (an adversary's are wrong,
// consistently, as a peer that computes something else).
import { stepOwners, type ControlMessage, type ControlOf } from '../protocol/messages';
import { payloadSigningText } from '../protocol/digest-signing';
import { PROTOCOL_VERSION } from '../protocol/version';
import type { RunConfig } from '../protocol/run-config';
import { KeyObject, sign } from 'node:crypto';
import { toBase64Url, type Identity } from '../net/identity';
import type { PeerProfile } from './types';
import type { PlaneEndpoint, SimControlPlane } from './sim-control-plane';
import type { VirtualClock } from './virtual-clock';
import { innerParamsDigest, outerParamsDigest, paramsDigest, StageMath } from './sim-compute';
import { localSyncOf, type LocalSyncSpec } from '../swarm/local-sync';
import { pickWeighted, RttRouter } from '../swarm/rtt-router';
import { validates } from '../swarm/validator';
import { hashKeys } from '../model/data';

/** step-trace part sizes (src/swarm/step-trace.ts): a part stays within the schema's bounds and 16 KiB (the cap was 16 KiB when they were sized; it is 60 KiB now). */
const PART_SENT = 32;
const PART_RECV = 32;
const PART_BACKWARD = 256;
const PART_LOSSES = 64;

export interface SimWorld {
  readonly clock: VirtualClock;
  readonly plane: SimControlPlane;
  readonly run: RunConfig;
  peer(id: string): SimPeer | undefined;
  /** Bytes of one boundary payload of one microbatch. */
  readonly activationBytes: number;
  readonly gradBytes: number;
  /** Bytes of one stage's parameters (fp32), and of its whole state (weights + AdamW moments) for a join. */
  stageParamBytes(stage: number): number;
  /** Bytes of one stage's gradient on the all-reduce wire (the run's codec). */
  reduceBytes(stage: number): number;
  /** Local-steps mode: bytes of one replica's sync payload of the stage (the sync codec over its parameters). */
  syncBytes(stage: number): number;
  /** Microbatch passes computed in attempts that never completed (re-run work) are counted by the simulator. */
  countPass(peer: SimPeer, step: number, attempt: number): void;
  countBytes(peer: SimPeer, bytes: number): void;
}

interface Received {
  from: string;
  digest: string;
  sig: Promise<string>;
}

/** One step attempt as this peer saw it. */
interface Attempt {
  step: number;
  attempt: number;
  stage: number;
  members: string[][];
  params: string;
  backward: { mb: number; input: string; gradIn: string | null }[];
  sent: [number, string, string][];
  recv: { mb: number; from: string; digest: string; sig: Promise<string> }[];
  act: Map<number, Received>;
  losses: [number, number | null][];
  busyMs: number;
  passes: number;
}

export class SimPeer implements PlaneEndpoint {
  readonly id: string;
  readonly publicKey: string;
  readonly oneWayMs: number;
  private readonly math: StageMath;
  /** The honest computation, for the weights' update (see onApply). */
  private readonly honest: StageMath;
  private connected = false;
  /** Bumped on every departure: work scheduled before it is dropped when it comes due. */
  private generation = 0;
  evicted = false;
  stage = -1;
  /** Updates applied to this peer's stage state (its params digest follows). */
  private applied = 0;
  /** Local-steps mode (src/swarm/local-sync.ts); null in per-step mode. */
  private readonly local: LocalSyncSpec | null;
  /**
   * Local-steps mode: this replica's weights, which differ per lane between outer syncs (each lane trains on its own
   * microbatches) and are equal across the stage after one. Null until the first inner step (the run's initial
   * weights, the same for every replica: paramsDigest at 0 updates).
   */
  private weights: { stage: number; digest: string } | null = null;
  /** Local-steps mode: this replica's part of the outer sync in progress (its payload out, when it is all sent). */
  syncOut: { step: number; stage: number; payload: string; sentAt: number } | null = null;
  private syncing: { step: number; stage: number; members: string[]; startedAt: number } | null = null;
  private busyUntil = 0;
  private upFreeAt = 0;
  private cur: Attempt | null = null;
  /** Payloads of an attempt whose step-begin has not reached this peer yet (a faster neighbour's). */
  private early: { step: number; attempt: number; run: () => void }[] = [];
  /** Next-stage routing as stage-runtime.ts does it: the real round-trip router, the coordinator's speeds. */
  private router = new RttRouter();
  private readonly speeds = new Map<string, number>();
  /** Microbatches out at each next-stage peer in this attempt (the router's queue). */
  private readonly queue = new Map<string, number>();
  /** Virtual ms of the last (re)join, for the time-to-evict figure. */
  joinedAtMs = 0;

  constructor(
    readonly profile: PeerProfile,
    private readonly identity: Identity,
    private readonly world: SimWorld,
  ) {
    this.id = profile.id;
    this.publicKey = identity.publicKey;
    this.oneWayMs = profile.rttMs / 2;
    this.math = new StageMath(world.run.runId, profile.adversary);
    this.honest = new StageMath(world.run.runId, false);
    this.local = localSyncOf(world.run);
  }

  online(): boolean {
    return this.connected;
  }

  /** The digest of the weights this peer holds for its stage now (validators replay with these). */
  get params(): string {
    if (this.weights && this.weights.stage === this.stage) return this.weights.digest;
    return paramsDigest(this.world.run.runId, this.stage, this.applied);
  }

  private say(msg: ControlMessage): void {
    if (this.connected) this.world.plane.fromPeer(this, msg);
  }

  /** Runs `fn` after `ms` unless this peer left (or was evicted) meanwhile. */
  private later(ms: number, fn: () => void): void {
    const gen = this.generation;
    this.world.clock.at(ms, 'peers', () => {
      if (this.connected && gen === this.generation) fn();
    });
  }

  /** A pass of `layers` of the microbatch on this peer's compute queue; `share` of a forward + backward. */
  private compute(share: number, fn: () => void): void {
    const a = this.cur;
    if (!a) return;
    const run = this.world.run;
    const r = run.stages[a.stage];
    const ms = ((run.B * run.T * (r.layerEnd - r.layerStart)) / this.profile.tokensPerSec) * 1000 * share;
    const now = this.world.clock.now();
    this.busyUntil = Math.max(now, this.busyUntil) + ms;
    a.busyMs += ms;
    a.passes++;
    this.world.countPass(this, a.step, a.attempt);
    this.later(this.busyUntil - now, fn);
  }

  // ------------------------------------------------------------------------------------------- lifecycle

  join(): void {
    this.connected = true;
    this.generation++;
    this.stage = -1;
    this.applied = 0;
    this.weights = null;
    this.syncOut = null;
    this.syncing = null;
    this.cur = null;
    this.router = new RttRouter();
    this.joinedAtMs = this.world.clock.now();
    this.say({ type: 'hello', protocol: PROTOCOL_VERSION });
    this.say({ type: 'peer-info', platform: 'browser', gpu: true, throughput: this.profile.tokensPerSec, adapter: 'sim' });
  }

  /** The tab closed (or reloads): gone from the signaling server; its state is lost. */
  leave(): void {
    if (!this.connected) return;
    this.connected = false;
    this.generation++;
    this.cur = null;
    this.early = [];
    this.syncOut = null;
    this.syncing = null;
    this.world.plane.left(this);
  }

  // ------------------------------------------------------------------------------------------- control

  receive(msg: ControlMessage): void {
    switch (msg.type) {
      case 'swarm-assign':
        this.stage = msg.stage;
        return;
      case 'swarm-members':
        return this.onMembers(msg);
      case 'step-begin':
        return this.onBegin(msg);
      case 'step-reduce':
        void this.onReduce(msg);
        return;
      case 'validate':
        return this.onValidate(msg);
      case 'step-apply':
        return this.onApply(msg);
      case 'sync-begin':
        return this.onSyncBegin(msg);
      case 'ping':
        this.say({ type: 'pong', nonce: msg.nonce });
        return;
      case 'refused':
      case 'shutdown':
        if (msg.type === 'shutdown' && msg.reason?.startsWith('evicted')) this.evicted = true;
        this.leave();
        return;
      default:
        return;
    }
  }

  private onMembers(msg: ControlOf<'swarm-members'>): void {
    const stage = msg.stages.findIndex((m) => m.includes(this.id));
    if (stage < 0) return;
    this.stage = stage;
    this.speeds.clear();
    msg.stages.forEach((m, s) => m.forEach((p, i) => this.speeds.set(p, msg.speeds[s]?.[i] ?? 1)));
    const join = msg.joins.find((j) => j.peer === this.id);
    let ms = 4 * this.oneWayMs; // links to the neighbours: an offer / answer round trip
    if (join) {
      // The stage's weights and AdamW moments copied from a live replica (src/swarm/state-transfer.ts).
      const src = this.world.peer(join.source);
      const bytes = 3 * this.world.stageParamBytes(stage);
      const bw = Math.min(src?.profile.upBytesPerSec ?? this.profile.downBytesPerSec, this.profile.downBytesPerSec);
      ms += (bytes / bw) * 1000 + (src?.oneWayMs ?? 0) + this.oneWayMs;
      if (src) this.world.countBytes(src, bytes);
      this.applied = msg.step;
      // Local-steps mode: the source's own (lane's) weights, as state-transfer copies them.
      this.weights = this.local && src && src.stage === stage ? { stage, digest: src.params } : null;
    }
    this.later(ms, () => this.say({ type: 'swarm-ready', epoch: msg.epoch }));
  }

  /** SWARM stochastic wiring (stage-runtime.ts pickNext): a next-stage replica weighted by its round trip. */
  private pickNext(a: Attempt, mb: number): string {
    const cands = a.members[a.stage + 1];
    // Local-steps mode: a microbatch stays in its lane (replica r of every stage), as local-sync.ts laneNext does.
    if (this.local) return cands[a.members[a.stage].indexOf(this.id)] ?? cands[0];
    const now = this.world.clock.now();
    const w = this.router.weights(
      cands,
      (p) => this.speeds.get(p) ?? 1,
      (p) => this.queue.get(p) ?? 0,
      now,
    );
    const to = pickWeighted(cands, w, hashKeys([this.world.run.seed, a.step, a.attempt, mb, a.stage]) / 0x100000000) ?? cands[0];
    this.router.sent(to, mb, now);
    this.queue.set(to, (this.queue.get(to) ?? 0) + 1);
    return to;
  }

  private onBegin(msg: ControlOf<'step-begin'>): void {
    const stage = msg.members.findIndex((m) => m.includes(this.id));
    if (stage < 0) return;
    this.stage = stage;
    this.cur = {
      step: msg.step,
      attempt: msg.attempt,
      stage,
      members: msg.members,
      params: this.params,
      backward: [],
      sent: [],
      recv: [],
      act: new Map(),
      losses: [],
      busyMs: 0,
      passes: 0,
    };
    this.router.begin();
    this.queue.clear();
    const early = this.early.filter((e) => e.step === msg.step && e.attempt === msg.attempt);
    this.early = this.early.filter((e) => e.step > msg.step || (e.step === msg.step && e.attempt > msg.attempt));
    for (const e of early) e.run();
    if (stage !== 0) return;
    stepOwners(msg).forEach((owner, mb) => {
      if (owner === this.id) this.forward(mb, this.math.tokens(msg.step, mb), null);
    });
  }

  /** Forward of `mb` here; on the last stage the loss and backward follow at once. */
  private forward(mb: number, input: string, from: string | null): void {
    const a = this.cur;
    if (!a) return;
    const last = a.stage === a.members.length - 1;
    this.compute(last ? 1 : 1 / 3, () => {
      if (this.cur !== a) return;
      if (!last) {
        this.send(a, mb, 'act', this.pickNext(a, mb), this.math.forward(a.stage, a.params, mb, input));
        return;
      }
      const loss = this.math.loss(a.stage, a.params, mb, input);
      a.losses.push([mb, loss]);
      this.say({ type: 'mb-loss', step: a.step, attempt: a.attempt, mb, loss });
      a.backward.push({ mb, input, gradIn: null });
      if (from) this.send(a, mb, 'grad', from, this.math.backward(a.stage, a.params, mb, input, null));
      else this.say({ type: 'mb-done', step: a.step, attempt: a.attempt, mb });
    });
  }

  private backwardPass(mb: number, gradIn: string): void {
    const a = this.cur;
    const act = a?.act.get(mb);
    if (!a) return;
    const input = a.stage === 0 ? this.math.tokens(a.step, mb) : act?.digest;
    if (input === undefined) return;
    this.compute(2 / 3, () => {
      if (this.cur !== a) return;
      a.backward.push({ mb, input, gradIn });
      if (a.stage === 0) this.say({ type: 'mb-done', step: a.step, attempt: a.attempt, mb });
      else if (act) this.send(a, mb, 'grad', act.from, this.math.backward(a.stage, a.params, mb, input, gradIn));
    });
  }

  private signer: KeyObject | null = null;

  /**
   * The same P-256 signature (IEEE P1363, base64url) as identity.sign, computed now with node:crypto: WebCrypto's
   * runs on the thread pool, and the virtual clock waits for every call in flight, so a payload's signature cost a
   * thread-pool round trip of idle main thread (45% of a 10,000-peer run's wall time).
   */
  private signNow(text: string): string {
    this.signer ??= KeyObject.from(this.identity.keys.privateKey);
    return toBase64Url(new Uint8Array(sign('sha256', Buffer.from(text, 'utf8'), { key: this.signer, dsaEncoding: 'ieee-p1363' })));
  }

  /** A boundary payload: signed digest (a real P-256 signature, src/net/identity.ts), uplink, latency. */
  private send(a: Attempt, mb: number, kind: 'act' | 'grad', to: string, digest: string): void {
    const slot = { runId: this.world.run.runId, step: a.step, attempt: a.attempt, mb, kind, to };
    const sig = Promise.resolve(this.signNow(payloadSigningText(slot, digest)));
    a.sent.push([mb, to, digest]);
    const bytes = kind === 'act' ? this.world.activationBytes : this.world.gradBytes;
    this.world.countBytes(this, bytes);
    const dst = this.world.peer(to);
    if (!dst) return;
    const now = this.world.clock.now();
    const bw = Math.min(this.profile.upBytesPerSec, dst.profile.downBytesPerSec);
    this.upFreeAt = Math.max(now, this.upFreeAt) + (bytes / bw) * 1000;
    const arrive = this.upFreeAt - now + this.oneWayMs + dst.oneWayMs;
    this.later(arrive, () => dst.payload(a.step, a.attempt, mb, kind, this.id, digest, sig));
  }

  /** A payload arrived over a data channel. */
  payload(step: number, attempt: number, mb: number, kind: 'act' | 'grad', from: string, digest: string, sig: Promise<string>): void {
    const a = this.cur;
    if (!this.connected) return;
    if (!a || a.step < step || (a.step === step && a.attempt < attempt)) {
      this.early.push({ step, attempt, run: () => this.payload(step, attempt, mb, kind, from, digest, sig) });
      return;
    }
    if (a.step !== step || a.attempt !== attempt) return;
    a.recv.push({ mb, from, digest, sig });
    if (kind === 'act') {
      a.act.set(mb, { from, digest, sig });
      this.forward(mb, digest, from);
    } else {
      this.router.back(from, mb, this.world.clock.now());
      this.queue.set(from, Math.max(0, (this.queue.get(from) ?? 0) - 1));
      this.backwardPass(mb, digest);
    }
  }

  private async onReduce(msg: ControlOf<'step-reduce'>): Promise<void> {
    const a = this.cur;
    if (!a || a.step !== msg.step || a.attempt !== msg.attempt) return;
    const gen = this.generation;
    const last = a.stage === a.members.length - 1;
    const contrib = this.math.contrib(a.stage, a.params, a.backward);
    const recv = await Promise.all(a.recv.map(async (r): Promise<[number, string, string, string]> => [r.mb, r.from, r.digest, await r.sig]));
    if (gen !== this.generation || this.cur !== a) return;
    const backward = a.backward.map((b) => b.mb);
    const parts = Math.max(
      1,
      Math.ceil(a.sent.length / PART_SENT),
      Math.ceil(recv.length / PART_RECV),
      Math.ceil(backward.length / PART_BACKWARD),
      Math.ceil(a.losses.length / PART_LOSSES),
    );
    for (let part = 0; part < parts; part++)
      this.say({
        type: 'step-trace',
        step: a.step,
        attempt: a.attempt,
        stage: a.stage,
        part,
        parts,
        backward: backward.slice(part * PART_BACKWARD, (part + 1) * PART_BACKWARD),
        sent: a.sent.slice(part * PART_SENT, (part + 1) * PART_SENT),
        recv: recv.slice(part * PART_RECV, (part + 1) * PART_RECV),
        // The contribution's digest only where validators replay it (not in local-steps mode), as stage-runtime.ts.
        ...(part === 0 && validates(this.world.run) ? { contrib } : {}),
        ...(last ? { losses: a.losses.slice(part * PART_LOSSES, (part + 1) * PART_LOSSES) } : {}),
      });
    const value = 1 + (Number.parseInt(contrib.slice(0, 6), 16) % 1000) / 1000;
    // Local-steps mode: no all-reduce; every lane's replica reports its own sum of squares (its lane's clip scale).
    if (this.local) {
      this.say({ type: 'grad-sumsq', step: a.step, attempt: a.attempt, stage: a.stage, value });
      return;
    }
    // Butterfly all-reduce of the stage gradient (src/swarm/allreduce.ts): every replica sends 2 (R-1)/R of its bytes,
    // the slowest uplink sets the pace, and its two all-to-all phases cost a peer-to-peer latency each.
    const m = a.members[a.stage];
    const R = m.length;
    const bytes = R > 1 ? (2 * (R - 1) * this.world.reduceBytes(a.stage)) / R : 0;
    let up = this.profile.upBytesPerSec;
    let hop = this.oneWayMs;
    for (const p of m) {
      const q = this.world.peer(p);
      if (q) up = Math.min(up, q.profile.upBytesPerSec);
      if (q) hop = Math.max(hop, q.oneWayMs);
    }
    this.world.countBytes(this, bytes);
    const ms = (bytes / up) * 1000 + (R > 1 ? 2 * 2 * hop : 0);
    if (m[0] !== this.id) return;
    this.later(ms, () => this.say({ type: 'grad-sumsq', step: a.step, attempt: a.attempt, stage: a.stage, value }));
  }

  /** A validator replays the worker's backward order with its own weights (src/swarm/validator.ts). */
  private onValidate(msg: ControlOf<'validate'>): void {
    if (msg.validator !== this.id) {
      // The worker uploads its inputs to the validator.
      if (msg.worker === this.id) this.world.countBytes(this, msg.inputs.length * this.world.activationBytes);
      return;
    }
    const a = this.cur;
    const worker = this.world.peer(msg.worker);
    if (!a || !worker) return;
    const run = this.world.run;
    const r = run.stages[msg.stage];
    const first = msg.stage === 0;
    const lastStage = msg.stage === a.members.length - 1;
    const upload = msg.inputs.length * this.world.activationBytes;
    const bw = Math.min(worker.profile.upBytesPerSec, this.profile.downBytesPerSec);
    const replayMs = msg.backward.length * ((run.B * run.T * (r.layerEnd - r.layerStart)) / this.profile.tokensPerSec) * 1000;
    const start = Math.max(this.world.clock.now(), this.busyUntil);
    this.busyUntil = start + replayMs;
    const ms = this.busyUntil - this.world.clock.now() + (upload / bw) * 1000 + worker.oneWayMs + this.oneWayMs;
    // Replay: the inputs the neighbours say they sent, this replica's weights.
    const params = this.params;
    const inAct = new Map(msg.inputs.filter((i) => i[1] === 'act').map((i) => [i[0], i[2]]));
    const inGrad = new Map(msg.inputs.filter((i) => i[1] === 'grad').map((i) => [i[0], i[2]]));
    const actIn = (mb: number) => (first ? this.math.tokens(msg.step, mb) : inAct.get(mb));
    const bad: string[] = [];
    for (const [mb, kind, d] of msg.outputs) {
      const input = actIn(mb);
      const want =
        input === undefined
          ? undefined
          : kind === 'act'
            ? this.math.forward(msg.stage, params, mb, input)
            : this.math.backward(msg.stage, params, mb, input, lastStage ? null : (inGrad.get(mb) ?? '?'));
      if (want !== d) bad.push(`${kind} ${mb}`);
    }
    const order = msg.backward.map((mb) => ({ mb, input: actIn(mb) ?? '?', gradIn: lastStage ? null : (inGrad.get(mb) ?? '?') }));
    if (msg.contrib !== undefined && this.math.contrib(msg.stage, params, order) !== msg.contrib) bad.push('contribution');
    for (const [mb, loss] of msg.losses ?? []) {
      const input = actIn(mb);
      if (input === undefined || this.math.loss(msg.stage, params, mb, input) !== loss) bad.push(`loss ${mb}`);
    }
    const ok = bad.length === 0;
    const detail = ok ? 'bitwise equal' : `differs: ${bad.slice(0, 8).join(', ')}`.slice(0, 512);
    this.later(ms, () =>
      this.say({
        type: 'validation',
        step: msg.step,
        attempt: msg.attempt,
        stage: msg.stage,
        worker: msg.worker,
        ok,
        detail,
        maxAbsDiff: ok ? 0 : null,
      }),
    );
  }

  private onApply(msg: ControlOf<'step-apply'>): void {
    const a = this.cur;
    if (!a || a.step !== msg.step || a.attempt !== msg.attempt) return;
    if (this.local) {
      // The lane's inner step: its own gradient (accumulated in backward order, from its own weights) with its own
      // clip scale. An adversary's weights follow the honest update, as in per-step mode: it computes wrong outputs,
      // not wrong weights (its wrong outputs already reach its lane's later stages as their inputs).
      const lane = a.members[a.stage].indexOf(this.id);
      const scale = msg.scales?.[lane];
      if (scale === undefined) return; // stage-runtime.ts fails the step: no clip scale for this lane
      const grad = this.honest.contrib(a.stage, a.params, a.backward);
      this.weights = { stage: a.stage, digest: innerParamsDigest(this.world.run.runId, a.stage, a.params, msg.step, grad, scale) };
    }
    this.applied = msg.step + 1;
    this.cur = null;
    const digest = this.params;
    const timing = { busyMs: a.busyMs, passes: a.passes };
    this.say({ type: 'step-done', step: msg.step, attempt: msg.attempt, stage: a.stage, digest, timing });
  }

  /**
   * Local-steps mode, `sync-begin` (stage-runtime.ts outerSync): this lane replica sends its compressed pseudo-gradient
   * to the stage's R-1 other replicas over its uplink, takes theirs in over its downlink, and applies the outer step
   * from all R in rank order, so the stage's replicas end with the same weights (sync-done's digest). An idle
   * replica (past the lanes) takes no part.
   */
  private onSyncBegin(msg: ControlOf<'sync-begin'>): void {
    const stage = msg.members.findIndex((m) => m.includes(this.id));
    if (!this.local || stage < 0) return;
    const members = msg.members[stage];
    const R = members.length;
    const now = this.world.clock.now();
    const out = (R - 1) * this.world.syncBytes(stage);
    this.world.countBytes(this, out);
    // The payload (the pseudo-gradient: base weights minus this replica's) stands for its weights after the inner steps.
    this.syncOut = { step: msg.step, stage, payload: this.params, sentAt: now + (out / this.profile.upBytesPerSec) * 1000 };
    this.syncing = { step: msg.step, stage, members, startedAt: now };
    // The replicas whose sync-begin came earlier may have waited for this one's payload.
    for (const p of members) this.world.peer(p)?.syncProgress(msg.step);
  }

  /** Another replica's payload is on its way: once every replica's is, the outer step is applied when the last arrives. */
  syncProgress(step: number): void {
    const s = this.syncing;
    if (!s || s.step !== step || !this.connected) return;
    const outs: { payload: string; arrive: number }[] = [];
    for (const p of s.members) {
      const q = this.world.peer(p);
      const o = q?.syncOut;
      if (!q || !o || o.step !== step || o.stage !== s.stage) return; // not sent yet (or gone: the coordinator ends the run)
      outs.push({ payload: o.payload, arrive: q === this ? o.sentAt : o.sentAt + q.oneWayMs + this.oneWayMs });
    }
    this.syncing = null;
    const inBytes = (s.members.length - 1) * this.world.syncBytes(s.stage);
    const done = Math.max(s.startedAt + (inBytes / this.profile.downBytesPerSec) * 1000, ...outs.map((o) => o.arrive));
    const digest = outerParamsDigest(
      this.world.run.runId,
      s.stage,
      step,
      outs.map((o) => o.payload),
    );
    this.later(done - this.world.clock.now(), () => {
      if (this.stage !== s.stage) return;
      this.weights = { stage: s.stage, digest };
      this.say({ type: 'sync-done', step, stage: s.stage, digest });
    });
  }
}
