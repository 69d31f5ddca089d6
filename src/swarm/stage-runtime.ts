// One swarm peer's training engine (docs/swarm.md): a pipeline Stage, the links to its neighbours' replicas and its
// own, and the per-step protocol driven by the coordinator's control messages:
//   step-begin  -> first stage: forward its own microbatches (bounded by the slot count) and send activations +
//                  targets to a next-stage peer picked per microbatch (weight = speed / (1 + queue));
//                  middle: forward, pass on, keep the slot until the gradient returns; last: forward + loss +
//                  backward at once, gradient back to the sender, mb-loss to the coordinator. First stage: mb-done.
//   step-reduce -> all-reduce the flat gradient across the stage's replicas, exchange + add the tied wte gradient
//                  between first and last stage, the stage leader reports grad-sumsq.
//   step-apply  -> AdamW (t = step + 1) with the coordinator's lr and clip scale, step-done with a params digest.
// Activations and their gradients cross as wire payloads (dtype u8) that the StageCompute encodes / decodes on the
// GPU with the run's codecs (docs/compression.md); their meta names the codec. A payload of another codec, or one
// the codec refuses (CodecError), is dropped and its sender reported to the coordinator (peer-report): the
// microbatch is lost and the step re-runs as after any loss.
// Every tensor carries {step, attempt, mb}. A new attempt of a step (a member vanished before the update) zeroes the
// gradients and drops everything of the old attempt; tensors of a step/attempt this peer has not begun yet are kept.
// All GPU work of the peer runs through one promise chain, so reads see exactly the launches before them. The GPU
// work itself goes through a StageCompute (src/model/stage-compute.ts): the same process, or a Web Worker in a tab.
import { Emitter } from '../net/emitter';
import { hashKeys, sampleBatch } from '../model/data';
import { stepOwners, type ControlMessage, type ControlOf } from '../protocol/messages';
import { tensorView, type IncomingTensor } from '../net/tensor';
import type { Transport } from '../net/transport';
import { slotCount, trustOf, type RunConfig } from '../protocol/run-config';
import { microbatchMeta, readStepTensor, tieMeta, type MicrobatchMeta, type StepTensor } from '../protocol/tensors';

/** A boundary payload's meta before its digest is signed. */
type UnsignedMeta = Omit<MicrobatchMeta, 'digest' | 'sig'>;
import { payloadSigningText, type DigestSigner, type KeyLookup } from '../protocol/digest-signing';
import { verifySignature } from '../net/identity';
import { pipelineProblem } from './tensor-policy';
import { allReduceSum } from './allreduce';
import { gatherSyncPayloads, laneNext, localSyncOf, type LocalSyncSpec } from './local-sync';
import { laneMicrobatches } from '../model/outer-optimizer';
import type { OuterShared } from './state-transfer';

import type { Links } from './links';
import { splitFlat, type FlatWhich, type StageCompute, type StageSpec } from '../model/stage-compute';
import { codecId, isCodecError } from '../model/stage-wire';
import { COMPRESS_NONE } from '../compress/spec';
import { digestFloats } from '../model/digest';
import { robustReduce } from './robust-reduce';
import { sumOfSquares } from './aggregate';
import { StepTraceRecorder, digestBytes, digestVector } from './step-trace';
import { Validator, validates } from './validator';
import { VALIDATION_KIND } from '../protocol/validation-tensors';
import { pickWeighted, RttRouter } from './rtt-router';
import { BusyMeter } from './busy-meter';
import { StageClock } from './stage-clock';
import { WTE } from '../model/config';

/** The StageSpec of stage `stage` of a run. */
export function stageSpecOf(run: RunConfig, stage: number): StageSpec {
  const range = run.stages[stage];
  if (!range) throw new Error(`stage-runtime: run ${run.runId} has no stage ${stage}`);
  return {
    model: run.model,
    range: { ...range },
    B: run.B,
    T: run.T,
    slots: slotCount(run),
    stage,
    seed: run.seed,
    compress: run.compress ?? COMPRESS_NONE,
  };
}

/** Host-side view of a stage's parameters (reads go through the StageCompute). */
export interface StageParamsView {
  readonly total: number;
  readonly slots: StageCompute['layout']['slots'];
  readonly byName: Map<string, StageCompute['layout']['slots'][number]>;
  readFlat(which: FlatWhich): Promise<Float32Array>;
  read(which?: FlatWhich): Promise<Map<string, Float32Array>>;
}

export interface StageRuntimeOptions {
  /** The stage's compute, built from stageSpecOf(run, stage). */
  compute: StageCompute;
  run: RunConfig;
  stage: number;
  peerId: string;
  links: Links;
  /** Control message to the coordinator. */
  send: (msg: ControlMessage) => void;
  /**
   * Training tokens: the first stage samples its microbatches' inputs from them and the last stage their targets
   * (sampleBatch(seed, step, mb) is the same everywhere), so targets never cross the network.
   */
  tokens?: Uint32Array;
  /** Initial weights; default GPT-2 init from run.seed (identical on every peer). */
  initial?: Map<string, Float32Array>;
  reduceTimeoutMs?: number;
  /** This peer's identity: signs the digests of the tensors it sends (src/protocol/digest-signing.ts). */
  signer: DigestSigner;
  /** Members' public keys (the signaling client's keyOf): received tensors' signatures are checked with them. */
  keyOf: KeyLookup;
  /** Compute a params digest for step-done (a full read of the parameters every step). Default true. */
  digest?: boolean;
  log?: (s: string) => void;
  onError?: (err: Error) => void;
}

interface Arrival {
  from: string;
  origin: string;
  route: string;
  /** The activation payload (decoded by the compute). */
  act?: Uint8Array;
}

interface Inflight {
  slot: number;
  /** Middle stages: the peer whose activations these were (gets the input gradient). */
  from?: string;
  /** First stage: the next-stage peer the activations went to (its queue). */
  to?: string;
}

interface StepState {
  step: number;
  attempt: number;
  key: string;
  owners: string[];
  members: string[][];
  /** First stage: own microbatches not started yet. */
  todo: number[];
  arrivals: Map<number, Arrival>;
  inflight: Map<number, Inflight>;
  /** Arrivals waiting for a free slot. */
  waiting: number[];
  /** Tied-wte gradients received from the partner stage. */
  tie?: Float32Array;
  tieWaiter?: (x: Float32Array) => void;
  tieAbort?: (e: Error) => void;
  reduced: boolean;
  /** Microbatches whose backward ran here in this attempt (robust aggregation divides the gradient by it). */
  backwards: number;
  /** Settles when this replica's reduce phase (all-reduce, tie exchange, gradient write-back) is over. */
  reduceDone?: Promise<void>;
  applied: boolean;
}

export class StaleAttempt extends Error {
  override name = 'StaleAttempt';
}

export { digestFloats } from '../model/digest';

export type StageRuntimeEvents = {
  /** A microbatch's forward ran here (activations sent on, or the loss computed on the last stage). */
  forward: { step: number; attempt: number; mb: number };
  /** A microbatch's backward ran here. */
  backward: { step: number; attempt: number; mb: number };
  /** Last stage: a microbatch's loss computed here (as sent in mb-loss). */
  loss: { step: number; attempt: number; mb: number; loss: number | null };
  /** The optimizer update of `step` was applied here. */
  applied: { step: number; attempt: number };
  /** Local-steps mode: the outer sync after `step` was applied here. */
  synced: { step: number };
};

export class StageRuntime {
  readonly events = new Emitter<StageRuntimeEvents>();
  /** Microbatch forwards / backwards run here (all steps and attempts). */
  readonly counters = { forward: 0, backward: 0 };
  readonly compute: StageCompute;
  /** The stage's parameters, host side (tests, state transfer). */
  readonly stage: { readonly params: StageParamsView; readonly slotCount: number };
  readonly stageIndex: number;
  readonly run: RunConfig;
  readonly peerId: string;
  readonly first: boolean;
  readonly last: boolean;
  private readonly links: Links;
  private readonly opts: StageRuntimeOptions;
  /** Local-steps mode (docs/compression.md): lanes, per-lane clip, outer sync every H steps; null = per-step. */
  private readonly local: LocalSyncSpec | null;
  /** Codec ids of the activation and gradient payloads (meta `codec`). */
  private readonly codecs: { act: string; grad: string };
  private chain: Promise<void> = Promise.resolve();
  private cur: StepState | null = null;
  private readonly early = new Map<string, { from: string; x: StepTensor }[]>();
  private freeSlots: number[];
  /** Outstanding microbatches per next-stage peer (this step), for the wiring weights. */
  private readonly queue = new Map<string, number>();
  /** Speed per peer from the coordinator's membership (tokens/s). */
  private speeds = new Map<string, number>();
  /** Round trips to the next-stage replicas (activations out -> gradient back): the routing weights once measured. */
  private readonly router = new RttRouter();
  private closed = false;
  /** Pipeline tensors being checked (their signatures), in arrival order; signed sends going out, in send order. */
  private incoming: Promise<void> = Promise.resolve();
  private outgoing: Promise<void> = Promise.resolve();
  /** Optimizer steps applied (AdamW t of the last update). */
  stepsDone = 0;
  /** What this replica computed in the current attempt (step-trace), its inputs kept for a validator's upload. */
  readonly trace: StepTraceRecorder;
  /** Recomputes other replicas' contributions, uploads this one's (null: the run does not validate). */
  private readonly validator: Validator | null;
  /** The attempt's contribution (stage gradient before the reduce), kept for a cross-adapter validation. */
  private contribution: Float32Array | null = null;
  /** Params digest of the last step-done (a validator checks it holds the weights the worker committed to). */
  private lastParamsDigest: string | null = null;

  /** Where this replica stands, for a member claim (coordinator-watch.ts): the last attempt begun, the last digest. */
  get position(): { attempt: number; digest: string } {
    return { attempt: this.cur?.attempt ?? 0, digest: this.lastParamsDigest ?? '' };
  }
  /** This attempt's compute time (the wrapper every GPU call of this.compute goes through). */
  private readonly busy: BusyMeter;
  /** Where this attempt's time goes (step-done.timing.parts, src/protocol/stage-time.ts). */
  private readonly clock = new StageClock();

  constructor(opts: StageRuntimeOptions) {
    this.opts = opts;
    // Compute ms per attempt for step-done.timing (live rebalancing, src/swarm/busy-meter.ts).
    this.compute = this.busy = new BusyMeter(opts.compute);
    this.run = opts.run;
    this.stageIndex = opts.stage;
    this.peerId = opts.peerId;
    this.links = opts.links;
    const spec = stageSpecOf(opts.run, opts.stage);
    const c = opts.compute;
    const layout = c.layout;
    if (
      layout.first !== (spec.range.layerStart === 0) ||
      layout.last !== (spec.range.layerEnd === spec.model.n_layer) ||
      layout.slotCount !== spec.slots ||
      layout.first !== (layout.inWidth === 0) ||
      layout.last !== (layout.outWidth === 0)
    ) {
      throw new Error(`stage-runtime: the compute was not built for stage ${opts.stage} of run ${opts.run.runId}`);
    }
    const byName = new Map(layout.slots.map((s) => [s.spec.name, s] as const));
    const params: StageParamsView = {
      total: layout.total,
      slots: layout.slots,
      byName,
      readFlat: (which) => c.readFlat(which),
      read: async (which = 'params') => splitFlat(layout, await c.readFlat(which)),
    };
    this.stage = { params, slotCount: layout.slotCount };
    this.codecs = { act: codecId(spec.compress.act), grad: codecId(spec.compress.grad) };
    this.first = layout.first;
    this.last = layout.last;
    if ((this.first || this.last) && !opts.tokens) throw new Error('stage-runtime: the first and the last stage need the training tokens');
    const initial = opts.initial;
    void this.enqueue(() => (initial ? c.load(initial) : c.init(opts.run.seed)));
    this.local = localSyncOf(opts.run);
    if (this.local) {
      const outer = c.outer;
      if (!outer) throw new Error('stage-runtime: local-steps mode needs a compute with an outer state (OuterCompute)');
      void this.enqueue(() => outer.reset()); // θ_sync = the initial weights
    }
    this.freeSlots = Array.from({ length: layout.slotCount }, (_, i) => i);
    // The payloads themselves are kept only when the run validates (uploads); the digests always (step-trace).
    this.trace = new StepTraceRecorder(validates(opts.run));
    this.validator = validates(opts.run) ? this.newValidator() : null;
  }

  private newValidator(): Validator {
    return new Validator({
      run: this.run,
      stageIndex: this.stageIndex,
      peerId: this.peerId,
      first: this.first,
      last: this.last,
      compute: this.compute,
      recorder: this.trace,
      contribution: () => this.contribution,
      link: (p) => this.links.get(p),
      enqueue: (task) => this.enqueue(task),
      reduced: async (step, attempt) => {
        const st = this.cur;
        if (!st || !this.isCurrent(step, attempt) || !st.reduceDone) throw new StaleAttempt(`step ${step}:${attempt} is not being reduced here`);
        await st.reduceDone;
        this.checkCurrent(st);
      },
      batch: (step, mb) => this.batchOf(step, mb),
      lossScale: (step, mb) =>
        this.cur ? this.lossScale(this.cur, mb, this.run.M * this.run.B * this.run.T) : 1 / (this.run.M * this.run.B * this.run.T),
      paramsDigest: () => this.lastParamsDigest,
      send: (m) => this.opts.send(m),
      log: (s) => this.log(s),
      // Half the reduce timeout: a worker that does not upload is reported before the coordinator (whose step
      // timeout is at least as long) gives up on the validator and strikes it instead.
      timeoutMs: (this.opts.reduceTimeoutMs ?? 60_000) / 2,
    });
  }

  private log(s: string): void {
    this.opts.log?.(`[${this.peerId} s${this.stageIndex}] ${s}`);
  }

  /** Runs `task` after every GPU task queued before it. Errors of stale attempts are swallowed, others reported. */
  private enqueue(task: () => Promise<void> | void): Promise<void> {
    const p = this.chain.then(async () => {
      if (this.closed) return;
      await this.clock.time('compute', task);
    });
    this.chain = p.catch((err: unknown) => {
      if (this.closed || err instanceof StaleAttempt) return;
      const e = err instanceof Error ? err : new Error(String(err));
      this.log(`error: ${e.stack ?? e.message}`);
      this.opts.onError?.(e);
    });
    return this.chain;
  }

  /** Resolves when every queued GPU task has run. */
  async idle(): Promise<void> {
    await this.incoming; // tensors whose signatures are being checked first
    return this.enqueue(() => undefined);
  }

  setSpeeds(stages: string[][], speeds: number[][]): void {
    this.speeds = new Map();
    stages.forEach((ps, s) => ps.forEach((p, r) => this.speeds.set(p, speeds[s]?.[r] ?? 1)));
  }

  // ------------------------------------------------------------------------------------------- control plane

  /** A throw while handling the coordinator's message fails this step attempt (reported), never the process. */
  onControl(msg: ControlMessage): void {
    try {
      this.handleControl(msg);
    } catch (err) {
      this.fail(err);
    }
  }

  private handleControl(msg: ControlMessage): void {
    if (this.closed) return;
    switch (msg.type) {
      case 'step-begin':
        return this.begin(msg);
      case 'step-reduce': {
        const st = this.cur;
        const p = this.reduce(msg);
        // step-apply can arrive while this replica still waits for its tied-wte partner (the coordinator only waits
        // for each stage's leader): apply() waits for this.
        if (st && this.isCurrent(msg.step, msg.attempt)) st.reduceDone ??= p;
        p.catch((err: unknown) => this.fail(err));
        return;
      }
      case 'step-apply':
        void this.apply(msg).catch((err: unknown) => this.fail(err));
        return;
      case 'sync-begin':
        void this.outerSync(msg).catch((err: unknown) => this.fail(err));
        return;
      case 'validate':
        this.validator?.onValidate(msg);
        return;
      default:
        return;
    }
  }

  private fail(err: unknown): void {
    if (this.closed || err instanceof StaleAttempt) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.log(`error: ${e.message}`);
    this.opts.onError?.(e);
  }

  private isCurrent(step: number, attempt: number): boolean {
    return !!this.cur && this.cur.step === step && this.cur.attempt === attempt;
  }

  private checkCurrent(st: StepState): void {
    if (this.closed || this.cur !== st) throw new StaleAttempt(`step ${st.key} is no longer current`);
  }

  private static keyOf(step: number, attempt: number): string {
    return `${step}:${attempt}`;
  }

  private static newer(step: number, attempt: number, than: StepState | null): boolean {
    return !than || step > than.step || (step === than.step && attempt > than.attempt);
  }

  private begin(msg: ControlOf<'step-begin'>): void {
    const { step, attempt } = msg;
    if (!StageRuntime.newer(step, attempt, this.cur)) return; // duplicate or old
    if (!msg.members[this.stageIndex]?.includes(this.peerId)) return; // not (yet) a member of this step
    const old = this.cur;
    old?.tieAbort?.(new StaleAttempt(`step ${old.key} superseded`));
    const key = StageRuntime.keyOf(step, attempt);
    const st: StepState = {
      step,
      attempt,
      key,
      owners: stepOwners(msg),
      members: msg.members,
      todo: [],
      arrivals: new Map(),
      inflight: new Map(),
      waiting: [],
      reduced: false,
      backwards: 0,
      applied: false,
    };
    if (this.first) st.owners.forEach((o, k) => o === this.peerId && st.todo.push(k));
    this.cur = st;
    this.trace.begin(step, attempt);
    this.contribution = null;
    this.reservedSlots = 0;
    this.queue.clear();
    this.router.begin();
    this.clock.begin(this.compute.codecMs);
    if (old && old.step === step) this.log(`restart of step ${step} as attempt ${attempt}`);
    // Old attempts/steps' buffered tensors are dead; this one's are replayed after the reset below.
    for (const k of [...this.early.keys()]) {
      const [s, a] = k.split(':').map(Number);
      // (Not this attempt's own: a tensor can overtake the step-begin that announces its attempt.)
      if (k !== key && !StageRuntime.newer(s, a, st)) this.early.delete(k);
    }
    const replay = this.early.get(key) ?? [];
    this.early.delete(key);
    void this.enqueue(async () => {
      this.checkCurrent(st);
      this.freeSlots = Array.from({ length: this.stage.slotCount }, (_, i) => i);
      this.busy.reset();
      await this.compute.zeroGrads();
    });
    for (const { from, x } of replay) this.accept(st, from, x);
    if (this.first) this.pump(st);
  }

  // ------------------------------------------------------------------------------------------- tensors

  /** Every pipeline tensor from a link (kinds act / targets / grad / tie). */
  /** A throw while handling a peer's tensor is logged and the tensor dropped; never the process. */
  onTensor(from: string, x: IncomingTensor): void {
    // A boundary payload's signature is checked first (WebCrypto: async); one chain keeps the arrival order. The
    // bytes are copied now: the link may reuse its buffer.
    const y = x.kind === 'act' || x.kind === 'grad' ? this.clock.time('send', () => ({ ...x, bytes: x.bytes.slice() })) : x;
    this.incoming = this.incoming.then(async () => {
      try {
        const bad = await this.clock.time('send', () => this.signatureProblem(from, y));
        if (bad) {
          const text = `${y.kind} from ${from}: ${bad}`;
          this.log(`dropping ${text}`);
          this.opts.send({ type: 'peer-report', peer: from, reason: text.slice(0, 512) });
          return;
        }
        this.handleTensor(from, y);
      } catch (err) {
        this.log(`dropping ${y.kind.slice(0, 64)} from ${from}: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }

  /**
   * A boundary payload (act / grad) must carry the digest of its bytes signed by its sender for this slot
   * (digest-signing.ts payloadSigningText), else it is refused: the trace reports the signature with the digest, so
   * a receiver cannot claim it got something else. Other kinds and unreadable meta: null (handleTensor deals).
   */
  private async signatureProblem(from: string, x: IncomingTensor): Promise<string | null> {
    if (this.closed || (x.kind !== 'act' && x.kind !== 'grad')) return null;
    const read = readStepTensor(x);
    if (!read.ok || read.value.kind === 'tie') return null;
    const m = read.value.meta;
    const key = this.opts.keyOf(from);
    if (!key) return 'no key known for its sender';
    const slot = { runId: this.run.runId, step: m.step, attempt: m.attempt, mb: m.mb, kind: read.value.kind, to: this.peerId };
    // The signature over the digest the payload claims, checked while its bytes are hashed (two crypto jobs in one
    // wait instead of one after the other: this is on the pipeline's critical path); both must hold.
    const [digest, signed] = await Promise.all([digestBytes(x.bytes), verifySignature(key, payloadSigningText(slot, m.digest), m.sig)]);
    if (digest !== m.digest) return 'its digest is not its bytes';
    return signed ? null : 'bad signature';
  }

  private handleTensor(from: string, x: IncomingTensor): void {
    if (this.closed) return;
    if (x.kind === VALIDATION_KIND) {
      if (this.validator) this.validator.onTensor(from, x);
      else this.log(`dropping ${VALIDATION_KIND} from ${from}: this run does not validate`);
      return;
    }
    // Typed meta or nothing: a tensor whose meta does not parse is reported and dropped.
    const read = readStepTensor(x);
    if (!read.ok) {
      this.log(`dropping ${x.kind.slice(0, 64)} from ${from}: ${read.error}`);
      return;
    }
    const t = read.value;
    const { step, attempt } = t.meta;
    const st = this.cur;
    if (st && st.step === step && st.attempt === attempt) return this.accept(st, from, t);
    if (StageRuntime.newer(step, attempt, st)) {
      const key = StageRuntime.keyOf(step, attempt);
      const list = this.early.get(key) ?? [];
      list.push({ from, x: t });
      this.early.set(key, list);
    }
    // else: a tensor of an abandoned attempt or a finished step
  }

  private accept(st: StepState, from: string, t: StepTensor): void {
    const { x, meta } = t;
    const mb = meta.mb;
    // Only the neighbours of this step may send it (tensor-policy.ts): a gradient only from the peer the microbatch
    // went to, the tie only from the partner replica that sends to this one.
    const sentTo = t.kind === 'grad' ? st.inflight.get(mb)?.to : undefined;
    const wrong = t.kind === 'grad' && !st.inflight.has(mb) ? null : pipelineProblem(t.kind, from, this.peerId, this.stageIndex, st.members, sentTo);
    if (wrong) {
      this.log(`dropping ${t.kind} of microbatch ${mb} of step ${st.key} from ${from}: ${wrong}`);
      this.opts.send({ type: 'peer-report', peer: from, reason: `${t.kind} of step ${st.key}: ${wrong}`.slice(0, 512) });
      return;
    }
    switch (t.kind) {
      case 'act': {
        if (this.first) return this.log(`first stage got ${x.kind}; dropped`);
        let a = st.arrivals.get(mb);
        if (!a) {
          a = { from, origin: t.meta.origin, route: t.meta.route };
          st.arrivals.set(mb, a);
        }
        const bad = this.payloadProblem(x, t.meta.codec, this.codecs.act);
        if (bad) return this.refused(st, from, 'act', mb, bad);
        a.act = x.bytes.slice(); // a buffer of its own: transferable to a worker
        this.trace.received(mb, from, 'act', a.act, t.meta.digest, t.meta.sig);
        this.arrived(st, mb);
        return;
      }
      case 'grad': {
        const f = st.inflight.get(mb);
        if (!f) return this.log(`gradient for microbatch ${mb} of step ${st.key} that is not in flight here; dropped`);
        const bad = this.payloadProblem(x, t.meta.codec, this.codecs.grad);
        if (bad) return this.refused(st, from, 'grad', mb, bad);
        const g = x.bytes.slice();
        this.trace.received(mb, from, 'grad', g, t.meta.digest, t.meta.sig);
        if (f.to) this.queue.set(f.to, Math.max(0, (this.queue.get(f.to) ?? 1) - 1));
        if (f.to) this.router.back(f.to, mb, performance.now());
        void this.enqueue(() => this.backwardFromGrad(st, mb, f, g, from));
        return;
      }
      case 'tie': {
        const g = Float32Array.from(tensorView(x) as Float32Array);
        if (st.tieWaiter) st.tieWaiter(g);
        else st.tie = g;
        return;
      }
    }
  }

  /** What is wrong with a boundary payload's envelope (its codec decodes and checks the bytes), or null. */
  private payloadProblem(x: IncomingTensor, codec: string | undefined, want: string): string | null {
    if (x.dtype !== 'u8') return `dtype ${x.dtype}, expected u8 (a codec payload)`;
    if (codec !== want) return `codec ${codec === undefined ? '(none)' : codec.slice(0, 64)}, expected the run's ${want}`;
    return null;
  }

  /**
   * A boundary payload this peer cannot use: dropped, logged, and its sender reported to the coordinator. The
   * microbatch is lost here; the step re-runs as after any loss (the coordinator's step timeout).
   */
  private refused(st: StepState, from: string, kind: 'act' | 'grad', mb: number, reason: string): void {
    const text = `${kind} of microbatch ${mb} of step ${st.key}: ${reason}`;
    this.log(`dropping ${text} (from ${from})`);
    this.opts.send({ type: 'peer-report', peer: from, reason: text.slice(0, 512) });
  }

  /** A compute call's error: a CodecError (the payload from `from` refused) is reported and dropped, others rethrown. */
  private refusedByCodec(err: unknown, st: StepState, from: string, kind: 'act' | 'grad', mb: number): void {
    if (!isCodecError(err)) throw err;
    this.checkCurrent(st);
    this.refused(st, from, kind, mb, err.message);
  }

  // ------------------------------------------------------------------------------------------- pipeline

  private meta(st: StepState, mb: number, origin: string, route: string, codec?: string): UnsignedMeta {
    const r = route ? `${route},${this.peerId}` : this.peerId;
    const m = { step: st.step, attempt: st.attempt, mb, origin, route: r.length > 256 ? r.slice(r.length - 256) : r };
    return codec === undefined ? m : { ...m, codec };
  }

  /**
   * A boundary payload out, with its digest signed for (run, step, attempt, mb, kind, receiver): signing is async,
   * so sends go through one chain (send order kept); `data` is a copy of its own (trace.sentTo).
   */
  private sendSigned(
    st: StepState,
    to: string,
    kind: 'act' | 'grad',
    mb: number,
    sent: { copy: Uint8Array; digest: Promise<string> },
    base: UnsignedMeta,
  ): void {
    const slot = { runId: this.run.runId, step: st.step, attempt: st.attempt, mb, kind, to };
    const meta = sent.digest.then(async (digest) =>
      microbatchMeta({ ...base, digest, sig: await this.clock.time('send', () => this.opts.signer.sign(payloadSigningText(slot, digest))) }),
    );
    const data = sent.copy;
    this.outgoing = this.outgoing.then(() =>
      meta.then(
        (m) => this.sendTo(to, { kind, dtype: 'u8', shape: [data.byteLength], data, meta: m }),
        (err: unknown) => this.log(`signing ${kind} of microbatch ${mb} for ${to} failed: ${err instanceof Error ? err.message : String(err)}`),
      ),
    );
  }

  /** Activations forward: the payload with its codec (the last stage samples the targets itself). */
  private sendActs(st: StepState, next: string, mb: number, origin: string, route: string, acts: Uint8Array): void {
    const meta = this.meta(st, mb, origin, route, this.codecs.act);
    this.router.sent(next, mb, performance.now());
    this.sendSigned(
      st,
      next,
      'act',
      mb,
      this.clock.time('send', () => this.trace.sentTo(mb, next, 'act', acts)),
      meta,
    );
  }

  /** The microbatch's tokens and targets: sampleBatch(seed, step, mb) over the run's training tokens. */
  private batch(st: StepState, mb: number): ReturnType<typeof sampleBatch> {
    return this.batchOf(st.step, mb);
  }

  private batchOf(step: number, mb: number): ReturnType<typeof sampleBatch> {
    const tokens = this.opts.tokens;
    if (!tokens) throw new Error('stage-runtime: this stage has no training tokens');
    const { B, T, seed } = this.run;
    return sampleBatch(tokens, { seed, step, micro: mb, B, T });
  }

  /** An input gradient back to the peer the activations came from. */
  private sendGrad(st: StepState, to: string, mb: number, origin: string, route: string, grad: Uint8Array): void {
    const meta = this.meta(st, mb, origin, route, this.codecs.grad);
    this.sendSigned(
      st,
      to,
      'grad',
      mb,
      this.clock.time('send', () => this.trace.sentTo(mb, to, 'grad', grad)),
      meta,
    );
  }

  /** SWARM stochastic wiring: a next-stage member with an open link, weighted by its round trip (rtt-router.ts). */
  private pickNext(st: StepState, mb: number): string | undefined {
    // Local-steps mode: a microbatch stays in its lane (replica r of every stage), no stochastic wiring.
    if (this.local) return laneNext(st.members, this.stageIndex, this.peerId, (p) => !!this.links.get(p));
    const cands = (st.members[this.stageIndex + 1] ?? []).filter((p) => this.links.get(p));
    if (cands.length === 0) return undefined;
    const w = this.router.weights(
      cands,
      (p) => this.speeds.get(p) ?? 1,
      (p) => this.queue.get(p) ?? 0,
      performance.now(),
    );
    // Deterministic per (seed, step, attempt, mb, stage) given the weights.
    return pickWeighted(cands, w, hashKeys([this.run.seed, st.step, st.attempt, mb, this.stageIndex]) / 0x100000000);
  }

  private sendTo(peer: string, what: Parameters<Transport['sendTensor']>[0]): void {
    const t = this.links.get(peer);
    if (!t) {
      this.log(`no link to ${peer} for ${what.kind}; the coordinator will re-run the step`);
      return;
    }
    // Only the synchronous part (framing, the channel's copy) is the sender's time; a backpressure wait is not.
    this.clock.time(
      'send',
      () => void t.sendTensor(what).catch((err: unknown) => this.log(`sending ${what.kind} to ${peer} failed: ${(err as Error).message}`)),
    );
  }

  /** First stage: start own microbatches while slots are free. */
  private pump(st: StepState): void {
    while (st.todo.length > 0 && this.reservedSlots < this.stage.slotCount) {
      const mb = st.todo.shift()!;
      this.reservedSlots++;
      void this.enqueue(() => this.firstForward(st, mb));
    }
  }

  /** Slots handed out or promised by queued tasks (first stage: bounded pumping). */
  private reservedSlots = 0;

  private takeSlot(): number {
    const s = this.freeSlots.shift();
    if (s === undefined) throw new Error('stage-runtime: no free slot (bookkeeping bug)');
    return s;
  }

  private releaseSlot(st: StepState, slot: number): void {
    this.freeSlots.push(slot);
    this.reservedSlots = Math.max(0, this.reservedSlots - 1);
    if (this.first) this.pump(st);
    else {
      const next = st.waiting.shift();
      if (next !== undefined) {
        this.reservedSlots++;
        void this.enqueue(() => this.middleForward(st, next));
      }
    }
  }

  private async firstForward(st: StepState, mb: number): Promise<void> {
    this.checkCurrent(st);
    const { B, T, M } = this.run;
    const b = this.batch(st, mb);
    const slot = this.takeSlot();
    if (this.last) {
      // A single-stage swarm: the whole model here.
      const { loss } = await this.compute.forwardBackward(slot, { tokens: b.inputs }, b.targets, this.lossScale(st, mb, M * B * T), {
        step: st.step,
        mb,
      });
      this.checkCurrent(st);
      this.counted('forward', st, mb);
      this.counted('backward', st, mb);
      this.lossOut(st, mb, loss);
      this.opts.send({ type: 'mb-done', step: st.step, attempt: st.attempt, mb });
      this.releaseSlot(st, slot);
      return;
    }
    const acts = await this.compute.forward(slot, { tokens: b.inputs }, { step: st.step, mb });
    this.checkCurrent(st);
    const next = this.pickNext(st, mb);
    st.inflight.set(mb, { slot, to: next });
    if (!next) return this.log(`no live next-stage peer for microbatch ${mb}`);
    this.queue.set(next, (this.queue.get(next) ?? 0) + 1);
    this.counted('forward', st, mb);
    this.sendActs(st, next, mb, this.peerId, '', acts);
  }

  private counted(what: 'forward' | 'backward', st: StepState, mb: number): void {
    this.counters[what]++;
    if (what === 'backward') st.backwards++;
    if (what === 'backward') this.trace.backwardRan(mb);
    this.events.emit(what, { step: st.step, attempt: st.attempt, mb });
  }

  private arrived(st: StepState, mb: number): void {
    if (this.last) {
      void this.enqueue(() => this.lastForwardBackward(st, mb));
      return;
    }
    if (this.reservedSlots < this.stage.slotCount) {
      this.reservedSlots++;
      void this.enqueue(() => this.middleForward(st, mb));
    } else st.waiting.push(mb);
  }

  private async middleForward(st: StepState, mb: number): Promise<void> {
    this.checkCurrent(st);
    const a = st.arrivals.get(mb);
    const input = a?.act;
    if (!a || !input) return this.log(`microbatch ${mb} of step ${st.key} has no activations here; dropped`);
    const slot = this.takeSlot();
    a.act = undefined; // handed to the compute (possibly transferred to a worker)
    let acts: Uint8Array;
    try {
      acts = await this.compute.forward(slot, { payload: input }, { step: st.step, mb });
    } catch (err) {
      this.refusedByCodec(err, st, a.from, 'act', mb);
      st.arrivals.delete(mb);
      this.releaseSlot(st, slot);
      return;
    }
    this.checkCurrent(st);
    const next = this.pickNext(st, mb);
    st.inflight.set(mb, { slot, from: a.from, to: next });
    if (!next) return this.log(`no live next-stage peer for microbatch ${mb}`);
    this.queue.set(next, (this.queue.get(next) ?? 0) + 1);
    this.counted('forward', st, mb);
    this.sendActs(st, next, mb, a.origin, a.route, acts);
  }

  private async lastForwardBackward(st: StepState, mb: number): Promise<void> {
    this.checkCurrent(st);
    const a = st.arrivals.get(mb);
    const input = a?.act;
    if (!a || !input) return this.log(`microbatch ${mb} of step ${st.key} has no activations here; dropped`);
    const { B, T, M } = this.run;
    const slot = 0; // forward and backward in one task: any slot will do
    const targets = this.batch(st, mb).targets;
    a.act = undefined; // handed to the compute (possibly transferred to a worker)
    let out: { loss: number; gradIn: Uint8Array | null };
    try {
      out = await this.compute.forwardBackward(slot, { payload: input }, targets, this.lossScale(st, mb, M * B * T), { step: st.step, mb });
    } catch (err) {
      this.refusedByCodec(err, st, a.from, 'act', mb);
      st.arrivals.delete(mb);
      return;
    }
    const grad = out.gradIn;
    if (!grad) throw new Error('stage-runtime: a last stage fed activations must return their gradient');
    this.checkCurrent(st);
    this.counted('forward', st, mb);
    this.counted('backward', st, mb);
    this.sendGrad(st, a.from, mb, a.origin, a.route, grad);
    this.lossOut(st, mb, out.loss);
  }

  private lossOut(st: StepState, mb: number, loss: number): void {
    const l = Number.isFinite(loss) ? loss : null;
    this.trace.loss(mb, l);
    this.opts.send({ type: 'mb-loss', step: st.step, attempt: st.attempt, mb, loss: l });
    this.events.emit('loss', { step: st.step, attempt: st.attempt, mb, loss: l });
  }

  private async backwardFromGrad(st: StepState, mb: number, f: Inflight, g: Uint8Array, from: string): Promise<void> {
    this.checkCurrent(st);
    st.inflight.delete(mb);
    let grad: Uint8Array | null;
    try {
      grad = await this.compute.backward(f.slot, g, { step: st.step, mb });
    } catch (err) {
      this.refusedByCodec(err, st, from, 'grad', mb);
      st.arrivals.delete(mb);
      this.releaseSlot(st, f.slot);
      return;
    }
    if (this.first) {
      this.checkCurrent(st);
      this.counted('backward', st, mb);
      this.opts.send({ type: 'mb-done', step: st.step, attempt: st.attempt, mb });
      this.releaseSlot(st, f.slot);
      return;
    }
    this.checkCurrent(st);
    this.counted('backward', st, mb);
    const a = st.arrivals.get(mb);
    st.arrivals.delete(mb);
    this.sendGrad(st, f.from!, mb, a?.origin ?? '', a?.route ?? '', grad!);
    this.releaseSlot(st, f.slot);
  }

  // ------------------------------------------------------------------------------------------- reduce + apply

  private async reduce(msg: ControlOf<'step-reduce'>): Promise<void> {
    const st = this.cur;
    if (!st || !this.isCurrent(msg.step, msg.attempt) || st.reduced) return;
    st.reduced = true;
    this.clock.syncBegins();
    st.members = msg.members;
    const mine = msg.members[this.stageIndex];
    const rank = mine.indexOf(this.peerId);
    if (rank < 0) throw new Error(`step-reduce ${st.key}: ${this.peerId} is not a member of stage ${this.stageIndex}`);
    // Local-steps mode: no all-reduce; every lane's replica reports its own sum of squares (per-lane clip).
    // Robust aggregation: every replica reports, with what it received from each rank (docs/trust.md).
    const robust = trustOf(this.run).aggregation !== 'sum' && !this.local;
    const reports = rank === 0 || !!this.local || robust;
    const allReduce = !robust && mine.length > 1 && !this.local;
    // The whole gradient comes to the host only where something combines or checks it: the replicas' all-reduce or
    // robust aggregation, or a validated run's contribution digest. Otherwise (one replica, or local steps) it stays
    // on the GPU and only the tied wte's slot crosses, for the first <-> last stage exchange.
    const whole = robust || allReduce || !!this.validator;
    const wte = this.run.stages.length > 1 && (this.first || this.last) ? this.stage.params.byName.get(WTE) : undefined;
    const read: { flat: Float32Array | null; tie: Float32Array | null; sumsq: number | null } = { flat: null, tie: null, sumsq: null };
    await this.enqueue(async () => {
      this.checkCurrent(st);
      if (whole) {
        read.flat = await this.compute.readFlat('grads');
        return;
      }
      // Nothing on the host changes this gradient but the tied wte's slot: its squares without that slot come back in
      // the same GPU round trip, so that the norm goes out as soon as the tied slot is summed instead of after another
      // round trip at the step's end (where it is on the critical path: the update waits for every stage's).
      const [tie, sumsq] = await Promise.all([
        wte ? this.compute.readFlat('grads', { offset: wte.offset, count: wte.size }) : null,
        reports ? this.compute.gradSumSquares({ excludeTiedWte: true }) : null,
      ]);
      read.tie = tie;
      read.sumsq = sumsq;
    });
    this.checkCurrent(st);
    let flat = read.flat;
    const tie = read.tie;
    // The trace of this attempt (its contribution's digest: before the reduce changes `flat`), before grad-sumsq.
    const traced = this.sendTrace(st, flat);
    let robustReport: { digests: (string | null)[]; sigs: (string | null)[]; excluded: { rank: number; reason: string }[] } | undefined;
    let usable = true;
    if (flat && robust) {
      const r = await this.robustCombine(st, mine, rank, flat);
      flat = r.grad;
      usable = r.any;
      robustReport = { digests: r.digests, sigs: r.sigs, excluded: r.excluded.map((e) => ({ rank: e.rank, reason: e.reason.slice(0, 128) })) };
    } else if (flat && allReduce) {
      const links = mine.map((p) => (p === this.peerId ? undefined : this.links.get(p)));
      if (links.some((l, j) => j !== rank && !l)) throw new StaleAttempt(`step-reduce ${st.key}: a replica link is down`);
      const tag = `${this.run.runId}:${st.step}:${st.attempt}:s${this.stageIndex}`;
      try {
        flat = await allReduceSum({ rank, size: mine.length, links }, flat, tag, { timeoutMs: this.opts.reduceTimeoutMs ?? 60_000 });
      } catch (err) {
        this.checkCurrent(st); // a restart is on its way: stay quiet
        // A replica's link went down mid-reduce: that replica vanished, and the coordinator re-runs the step
        // (it sees the peer leave). Not an error of this peer.
        const down = mine.filter((p) => p !== this.peerId && !this.links.get(p));
        if (down.length > 0) {
          this.log(`all-reduce of step ${st.key} lost ${down.join(', ')}; waiting for the coordinator's restart`);
          throw new StaleAttempt(`step-reduce ${st.key}: replica link down (${down.join(', ')})`);
        }
        throw err;
      }
      this.checkCurrent(st);
    }
    // This stage's share of the global norm: the squares of its gradient without the tied slot (the GPU's), and for
    // the first stage those of the slot summed with the last stage's (so every parameter counts once).
    const report = async (gpuSumsq: number, slotSumsq: number): Promise<void> => {
      await traced;
      this.checkCurrent(st);
      const v = gpuSumsq + slotSumsq;
      // Robust mode with every vector excluded: nothing to apply (null: the coordinator's clip scale is 0).
      const value = Number.isFinite(v) && usable ? v : null;
      this.opts.send({
        type: 'grad-sumsq',
        step: st.step,
        attempt: st.attempt,
        stage: this.stageIndex,
        value,
        ...(robustReport ? { robust: robustReport } : {}),
      });
    };
    const slot = wte ? (flat ? flat.subarray(wte.offset, wte.offset + wte.size) : tie) : null;
    if (wte && !slot) throw new Error(`step ${st.key}: the tied wte's gradient was not read`);
    // Reported after the exchange, even by a last stage whose share does not need it: a stage that reported and then
    // could not apply (its partner withheld the tied slot) would be dropped after the update, a restart is not.
    if (wte && slot) await this.exchangeTied(st, msg.members, slot);
    this.checkCurrent(st);
    const early = read.sumsq;
    // Taken now: writing the gradient back may transfer (detach) `flat`, and `slot` with it (a Worker's compute).
    const slotSumsq = this.first && slot ? sumOfSquares(slot) : 0;
    if (early !== null) await report(early, slotSumsq);
    const reduced = flat;
    await this.enqueue(async () => {
      this.checkCurrent(st);
      if (reduced) await this.compute.writeFlat('grads', reduced);
      else if (tie && wte) await this.compute.writeFlat('grads', tie, wte.offset);
      if (reports && early === null) read.sumsq = await this.compute.gradSumSquares({ excludeTiedWte: true });
    });
    this.checkCurrent(st);
    const late = read.sumsq;
    if (early === null && late !== null) await report(late, slotSumsq);
  }

  /**
   * Robust aggregation (trust.aggregation != 'sum'): this replica's gradient divided by the microbatches whose
   * backward ran here in this attempt (the first stage: the ones it owns; a later stage: the ones the stochastic wiring
   * routed to it, possibly none), exchanged with every replica of the stage and combined (src/swarm/robust-reduce.ts).
   */
  private async robustCombine(st: StepState, mine: string[], rank: number, flat: Float32Array): ReturnType<typeof robustReduce> {
    const links = mine.map((p) => (p === this.peerId ? undefined : this.links.get(p)));
    if (links.some((l, j) => j !== rank && !l)) throw new StaleAttempt(`step-reduce ${st.key}: a replica link is down`);
    try {
      const r = await robustReduce({
        links,
        rank,
        step: st.step,
        attempt: st.attempt,
        stage: this.stageIndex,
        grad: flat,
        count: st.backwards,
        M: this.run.M,
        trust: trustOf(this.run),
        timeoutMs: this.opts.reduceTimeoutMs ?? 60_000,
        runId: this.run.runId,
        signer: this.opts.signer,
        keyOf: this.opts.keyOf,
      });
      this.checkCurrent(st);
      for (const e of r.excluded) this.log(`step ${st.key}: excluded rank ${e.rank} (${mine[e.rank]}): ${e.reason}`);
      return r;
    } catch (err) {
      this.checkCurrent(st);
      const down = mine.filter((p) => p !== this.peerId && !this.links.get(p));
      if (down.length > 0) throw new StaleAttempt(`step-reduce ${st.key}: replica link down (${down.join(', ')})`);
      throw err;
    }
  }

  /** step-trace of the current attempt (docs/trust.md): with the contribution's digest when the run validates. */
  private async sendTrace(st: StepState, contribution: Float32Array | null): Promise<void> {
    let contrib: string | undefined;
    if (this.validator && contribution) {
      this.contribution = contribution.slice();
      contrib = await digestVector(this.contribution);
    }
    const msgs = await this.trace.messages(this.stageIndex, contrib, this.last);
    this.checkCurrent(st);
    for (const m of msgs) this.opts.send(m);
  }

  /** First <-> last stage: send my (reduced) wte gradient to my partners, add the one I receive. In place on `mine`. */
  private async exchangeTied(st: StepState, members: string[][], mine: Float32Array): Promise<void> {
    const firstM = members[0];
    const lastM = members[members.length - 1];
    const [own, other] = this.first ? [firstM, lastM] : [lastM, firstM];
    const i = own.indexOf(this.peerId);
    // Peer i of one stage receives from other[i % |other|], so it sends to every j of the other with j % |own| == i.
    const meta = tieMeta({ step: st.step, attempt: st.attempt, mb: -1 });
    const copy = mine.slice();
    for (let j = 0; j < other.length; j++) {
      if (j % own.length !== i) continue;
      this.sendTo(other[j], { kind: 'tie', dtype: 'f32', shape: [mine.length], data: copy, meta });
    }
    const from = other[i % other.length];
    const theirs =
      st.tie ??
      (await new Promise<Float32Array>((resolve, reject) => {
        const timer = setTimeout(() => {
          st.tieWaiter = st.tieAbort = undefined;
          reject(new Error(`step ${st.key}: no tied wte gradient from ${from}`));
        }, this.opts.reduceTimeoutMs ?? 60_000);
        st.tieWaiter = (x) => {
          clearTimeout(timer);
          st.tieWaiter = st.tieAbort = undefined;
          resolve(x);
        };
        st.tieAbort = (e) => {
          clearTimeout(timer);
          st.tieWaiter = st.tieAbort = undefined;
          reject(e);
        };
      }));
    st.tie = undefined;
    if (theirs.length !== mine.length) throw new Error(`step ${st.key}: tied wte gradient has ${theirs.length} values, expected ${mine.length}`);
    // a + b == b + a in IEEE arithmetic: the first and the last stage end with the same bits.
    for (let k = 0; k < mine.length; k++) mine[k] = mine[k] + theirs[k];
  }

  private async apply(msg: ControlOf<'step-apply'>): Promise<void> {
    const st = this.cur;
    if (!st || !this.isCurrent(msg.step, msg.attempt) || st.applied) return;
    st.applied = true;
    if (!st.reduceDone) throw new Error(`step-apply ${st.key} before step-reduce`);
    await st.reduceDone; // throws if the reduce failed: this replica must not apply a partial gradient
    this.checkCurrent(st);
    let digest = '';
    await this.enqueue(async () => {
      this.checkCurrent(st);
      const withDigest = this.opts.digest ?? true;
      const lane = st.members[this.stageIndex]?.indexOf(this.peerId) ?? -1;
      const scale = this.local ? msg.scales?.[lane] : msg.scale;
      if (scale === undefined) throw new Error(`step-apply ${st.key}: no clip scale for lane ${lane}`);
      if (scale === 0) {
        // The coordinator saw a non-finite gradient norm (or nothing usable): the update is skipped. AdamW with a
        // zero-scaled gradient would still move the weights (decay, momentum) and NaN x 0 is NaN: neither the
        // weights nor the moments may change.
        this.log(`step ${st.key}: clip scale 0, update skipped`);
        this.stepsDone = st.step + 1;
        if (withDigest) digest = await this.compute.paramsDigest();
        return;
      }
      const d = await this.compute.optimizerStep(st.step + 1, { ...this.run.optimizer, lr: msg.lr }, { scale, digest: withDigest });
      this.stepsDone = st.step + 1;
      if (d) digest = d;
    });
    this.lastParamsDigest = digest || null;
    if (this.closed) return;
    const timing = { ...this.busy.take(), parts: this.clock.take(this.compute.codecMs) };
    this.opts.send({ type: 'step-done', step: st.step, attempt: st.attempt, stage: this.stageIndex, digest, timing });
    this.events.emit('applied', { step: st.step, attempt: st.attempt });
  }

  /**
   * A joining replica's state (weights + AdamW moments; local-steps mode: the stage's shared outer state — its own
   * error-feedback residual starts at zero), written after every queued GPU task.
   */
  loadState(s: { params: Float32Array; m: Float32Array; v: Float32Array; outer?: OuterShared & { ef?: Float32Array } }): Promise<void> {
    return this.enqueue(async () => {
      await this.compute.writeFlat('params', s.params);
      await this.compute.writeFlat('m', s.m);
      await this.compute.writeFlat('v', s.v);
      const outer = this.compute.outer;
      if (this.local && (!s.outer || !outer)) throw new Error('stage-runtime: a local-steps replica needs the outer state of its source');
      if (s.outer && outer) {
        await outer.writeFlat('sync', s.outer.sync);
        await outer.writeFlat('mom', s.outer.mom);
        // Its own checkpoint restores its residual (src/swarm/peer-checkpoints.ts); a copied state starts at zero.
        await outer.writeFlat('ef', s.outer.ef ?? new Float32Array(s.outer.sync.length));
      }
    });
  }

  /**
   * The whole stage state for a checkpoint (src/swarm/peer-checkpoints.ts), read-only, queued after every GPU task
   * queued so far (so after the update of the step just applied); `step` is the steps applied at that point. Null
   * when the runtime closed first.
   */
  async readCheckpointState(): Promise<{
    step: number;
    params: Float32Array;
    m: Float32Array;
    v: Float32Array;
    outer?: OuterShared & { ef: Float32Array };
  } | null> {
    const c = this.compute;
    const outer = this.local ? c.outer : undefined;
    let got: Awaited<ReturnType<StageRuntime['readCheckpointState']>> = null;
    await this.enqueue(async () => {
      const step = this.stepsDone;
      const [params, m, v] = [await c.readFlat('params'), await c.readFlat('m'), await c.readFlat('v')];
      got = outer
        ? { step, params, m, v, outer: { sync: await outer.readFlat('sync'), mom: await outer.readFlat('mom'), ef: await outer.readFlat('ef') } }
        : { step, params, m, v };
    });
    return got;
  }

  /** Whether the run syncs replicas by local steps (a joiner's state then carries the outer state). */
  get localSteps(): boolean {
    return this.local !== null;
  }

  /** Local-steps mode: the stage's shared outer state, host side (a state transfer's source); null in per-step mode. */
  async readOuter(): Promise<OuterShared | null> {
    const outer = this.compute.outer;
    if (!this.local || !outer) return null;
    let got: OuterShared | null = null;
    await this.enqueue(async () => {
      got = { sync: await outer.readFlat('sync'), mom: await outer.readFlat('mom') };
    });
    return got;
  }

  /** Loss scale of microbatch `mb`: 1 / the step's tokens, or in local-steps mode 1 / its lane's tokens. */
  private lossScale(st: StepState, mb: number, stepTokens: number): number {
    if (!this.local) return 1 / stepTokens;
    const R = st.members[0].length;
    return 1 / (laneMicrobatches(this.run.M, R, mb % R).length * this.run.B * this.run.T);
  }

  /**
   * Local-steps mode, `sync-begin`: encode this replica's pseudo-gradient, all-gather the stage's payloads, apply the
   * outer step from all of them in rank order (replicas end bitwise equal), report sync-done with a digest.
   */
  private async outerSync(msg: ControlOf<'sync-begin'>): Promise<void> {
    const spec = this.local;
    const outer = this.compute.outer;
    if (!spec || !outer) throw new Error(`sync-begin after step ${msg.step}, but the run is not in local-steps mode`);
    const mine = msg.members[this.stageIndex] ?? [];
    const rank = mine.indexOf(this.peerId);
    if (rank < 0) return; // an idle replica (past the lanes)
    let payload: Uint8Array | undefined;
    await this.enqueue(async () => {
      payload = await outer.encode(msg.step, rank);
    });
    if (!payload) throw new Error(`sync after step ${msg.step}: encoding the pseudo-gradient failed`);
    const links = mine.map((p) => (p === this.peerId ? undefined : this.links.get(p)));
    const payloads = await gatherSyncPayloads({
      links,
      rank,
      step: msg.step,
      stage: this.stageIndex,
      payload,
      timeoutMs: this.opts.reduceTimeoutMs ?? 60_000,
    });
    let digest: string | undefined;
    await this.enqueue(async () => {
      digest = digestFloats(await outer.apply(payloads, { lr: spec.outerLr, momentum: spec.outerMomentum }));
    });
    if (digest === undefined) throw new Error(`sync after step ${msg.step}: the outer step failed`);
    if (this.closed) return;
    this.opts.send({ type: 'sync-done', step: msg.step, stage: this.stageIndex, digest });
    this.events.emit('synced', { step: msg.step });
  }

  /**
   * Marks the step counter after a state transfer (a joining replica continues at `step`) or a restore. A rollback
   * (docs/resilience.md "Stage loss") sets it below the attempt in progress: that attempt is dropped, so the re-run
   * of an earlier step is not refused as older than it.
   */
  setStepsDone(n: number): void {
    this.stepsDone = n;
    const cur = this.cur;
    if (cur && cur.step >= n) {
      cur.tieAbort?.(new StaleAttempt(`step ${cur.key} rolled back to step ${n}`));
      this.cur = null;
    }
  }

  /** Stops all work; queued tasks are skipped. Does not destroy the runtime (the owner does). */
  close(): void {
    this.closed = true;
    this.cur?.tieAbort?.(new StaleAttempt('closed'));
  }
}
