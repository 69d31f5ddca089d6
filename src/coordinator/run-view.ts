// One view of a swarm run, for every place that shows one: the CLI's live table (src/cli/live-table.ts), the
// coordinator page (src/ui/coordinator-page.ts) and, fed only the coordinator's step reports, a contributor's page
// (src/ui/swarm-peer-view.ts). A pure reducer: (view, input) -> view, where an input is a coordinator event, a
// control message the coordinator (or a peer) received, a room change, or a phase of the run's lifecycle. An input
// that changes nothing returns the same view object, so a renderer can skip it.
import type { ControlMessage } from '../protocol/messages';
import type { RunConfig } from '../protocol/run-config';
import {
  addWireBytes,
  emptyWireBytes,
  fp32StepWireBytes,
  totalWireBytes,
  WIRE_CATEGORIES,
  type WireBytes,
  type WireCategory,
} from '../protocol/wire-categories';
import { meanStageTime, type StageTime } from '../protocol/stage-time';
import type { StepReport } from './coordinator';

/** Where a peer is, in one vocabulary for every renderer. */
export type PeerState =
  | 'in room' // in the signaling room, not announced yet
  | 'joined' // announced itself (peer-info)
  | 'assigned' // has a stage, waits for the next membership
  | 'linking' // linking up with its stage neighbours and replicas
  | 'copying state' // joining mid-run: copying its stage's weights from a live replica
  | 'ready' // linked for the current membership
  | 'forward/backward' // working on the step's microbatches
  | 'reducing' // all-reducing its stage's gradients
  | 'applied' // applied the last step's update
  | 'error'
  | 'gone';

export type RunPhase = 'idle' | 'connecting' | 'waiting' | 'training' | 'finished' | 'error';

export interface PeerView {
  id: string;
  platform: string;
  /** Join benchmark, tokens/s (0: not announced). */
  throughput: number;
  stage: number | null;
  state: PeerState;
  /** Microbatches this peer finished: mb-done on the first stage, mb-loss on the others (M per step per stage). */
  microbatches: number;
  /** What the peer said with its last error. */
  detail?: string;
}

export interface StageView {
  layerStart: number;
  layerEnd: number;
  /** Current members, in rank order (latest membership or step). */
  members: string[];
}

export interface RunEvent {
  /** Steps completed when it happened. */
  step: number;
  text: string;
}

export interface RunView {
  phase: RunPhase;
  runId: string | null;
  /** Steps of the run (0: not known yet). */
  steps: number;
  /** Tokens a step trains on (M*B*T; 0: not known yet). */
  tokensPerStep: number;
  stages: StageView[];
  /** In the order they were first seen. */
  peers: PeerView[];
  /** Steps completed. */
  step: number;
  /** The run's mean loss per step, index = step (NaN: not finite, or not reported here). */
  losses: number[];
  /** Every completed step's report, on the coordinator's side (a contributor gets losses only). */
  reports: StepReport[];
  restarts: number;
  /** The latest step re-run, for a one-line status under a table. */
  note: string;
  /** The run's notable events, the latest MAX_EVENTS. */
  events: RunEvent[];
  error: string;
  /** The run, once started (the coordinator's side; a contributor's view takes the wire figures from step reports). */
  run: RunConfig | null;
  /** Wire accounting: bytes the run sent so far per category (peers' step-done reports + the coordinator's own). */
  wire: WireBytes;
  /** What today's fp32 wire (no bottleneck, per-step all-reduce) would have sent for the same steps. */
  fp32: WireBytes;
  /** Tokens trained so far (steps done x M x B x T). */
  tokens: number;
  /** The coordinator's ledger after the latest step, sorted by id (src/coordinator/ledger.ts). */
  ledger: LedgerRow[];
  /** A contributor's own credits, from the coordinator's `credit` messages (null: none yet). */
  credit: CreditView | null;
  /** The run is paused (a stage lost every replica and is being restored, docs/resilience.md); null: running. */
  paused: PausedView | null;
}

/** Why and where the run is paused (the coordinator's `paused` event, or its `run-state` message on a contributor). */
export interface PausedView {
  reason: string;
  /** The step it paused at. */
  step: number;
}

/** One contributor in the ledger table. Credits are FLOPs of verified work. */
export interface LedgerRow {
  id: string;
  credits: number;
  /** Its fraction of all credits (0..1). */
  share: number;
  /** Its contributions validators found correct, the strikes against it, and whether it was evicted. */
  validated: number;
  strikes: number;
  evicted: boolean;
}

/** A contributor's own standing, as the coordinator's last `credit` said it. */
export interface CreditView {
  credits: number;
  total: number;
  /** credits / total (0 while the total is 0). */
  share: number;
  contributors: number;
  validated: number;
  strikes: number;
}

export const MAX_EVENTS = 200;
/** How much of a peer's error detail the view keeps. */
export const MAX_DETAIL = 200;

export type RunViewInput =
  // lifecycle (the coordinator's side)
  | { kind: 'connecting' }
  | { kind: 'started'; run: RunConfig }
  | { kind: 'finished' }
  | { kind: 'failed'; error: string }
  // bytes the coordinator itself sent (its signaling connection), since the previous such input
  | { kind: 'wire'; bytes: WireBytes }
  // the signaling room
  | { kind: 'peer-joined'; peerId: string }
  | { kind: 'peer-left'; peerId: string }
  // a control message received (by the coordinator; by a peer: the coordinator's step reports)
  | { kind: 'control'; from: string; msg: ControlMessage }
  // the coordinator's events (src/coordinator/coordinator.ts CoordinatorEvents)
  | { kind: 'assigned'; peerId: string; stage: number }
  | { kind: 'membership'; epoch: number; stages: string[][]; joins: string[] }
  | { kind: 'vanished'; peerId: string }
  /** Live rebalancing moved a member to another stage (src/coordinator/rebalance.ts). */
  | { kind: 'moved'; peerId: string; from: number; to: number; reason: string }
  /** A member that did not answer a ping in time (src/coordinator/liveness.ts): out until it is heard from again. */
  | { kind: 'frozen'; peerId: string; reason: string }
  // stage loss (src/coordinator/stage-restore.ts): paused at `step`; resumed at `step` (< from: rolled back)
  | { kind: 'paused'; step: number; reason: string; stages: number[] }
  | { kind: 'resumed'; step: number; from: number; stages: number[] }
  | { kind: 'restart'; step: number; attempt: number; reason: string }
  | { kind: 'step'; report: StepReport }
  // the coordinator's ledger after a step's verified work was credited
  | { kind: 'ledger'; rows: LedgerRow[] };

export function emptyRunView(): RunView {
  return {
    phase: 'idle',
    runId: null,
    steps: 0,
    tokensPerStep: 0,
    stages: [],
    peers: [],
    step: 0,
    losses: [],
    reports: [],
    restarts: 0,
    note: '',
    events: [],
    error: '',
    run: null,
    wire: emptyWireBytes(),
    fp32: emptyWireBytes(),
    tokens: 0,
    ledger: [],
    credit: null,
    paused: null,
  };
}

/** States a step's end does not overwrite. */
const SETTLED: ReadonlySet<PeerState> = new Set<PeerState>(['gone', 'error']);

export function reduceRunView(v: RunView, input: RunViewInput): RunView {
  switch (input.kind) {
    case 'connecting':
      return { ...emptyRunView(), phase: 'connecting' };
    case 'started': {
      const { run } = input;
      return {
        ...v,
        // A contributor may hear of the run's steps before its own assignment.
        phase: v.phase === 'training' ? 'training' : 'waiting',
        runId: run.runId,
        steps: run.steps,
        tokensPerStep: run.M * run.B * run.T,
        run,
        stages: run.stages.map((r) => ({ layerStart: r.layerStart, layerEnd: r.layerEnd, members: [] })),
      };
    }
    case 'finished':
      return logged({ ...v, phase: 'finished' }, `run ${v.runId ?? ''} finished after ${v.step} step(s)`);
    case 'failed':
      return logged({ ...v, phase: 'error', error: input.error }, `run failed: ${input.error}`);
    case 'wire':
      return totalWireBytes(input.bytes) > 0 ? { ...v, wire: addWireBytes(v.wire, input.bytes) } : v;
    case 'peer-joined':
      return v.peers.some((p) => p.id === input.peerId) ? v : withPeer(v, input.peerId, (p) => p);
    case 'peer-left':
      return v.peers.some((p) => p.id === input.peerId) ? withPeer(v, input.peerId, (p) => ({ ...p, state: 'gone' })) : v;
    case 'control':
      return onControl(v, input.from, input.msg);
    case 'assigned':
      return logged(
        withPeer(v, input.peerId, (p) => ({ ...p, stage: input.stage, state: 'assigned' })),
        `${input.peerId} assigned to stage ${input.stage}`,
      );
    case 'membership': {
      const members = new Set(input.stages.flat());
      const joins = new Set(input.joins);
      let next = v;
      for (const id of members) {
        next = withPeer(next, id, (p) => (p.state === 'gone' ? p : { ...p, state: joins.has(id) ? 'copying state' : 'linking' }));
      }
      next = { ...next, stages: withMembers(next.stages, input.stages) };
      const text =
        `membership epoch ${input.epoch}: ${input.stages.map((m, s) => `s${s}=[${m.join(',')}]`).join(' ')}` +
        (input.joins.length ? `; joining: ${input.joins.join(',')}` : '');
      return logged(next, text);
    }
    case 'moved':
      return logged(
        withPeer(v, input.peerId, (p) => ({ ...p, stage: input.to, state: 'assigned' })),
        `${input.peerId} moved from stage ${input.from} to stage ${input.to}: ${input.reason}`,
      );
    case 'vanished':
      return logged(
        withPeer(v, input.peerId, (p) => ({ ...p, state: 'gone' })),
        `${input.peerId} vanished`,
      );
    case 'frozen':
      return logged(
        withPeer(v, input.peerId, (p) => ({ ...p, state: 'gone' })),
        `${input.peerId} frozen: ${input.reason}`,
      );
    case 'paused':
      return logged({ ...v, paused: { reason: input.reason, step: input.step } }, `run paused at step ${input.step}: ${input.reason}`);
    case 'resumed':
      return logged(
        { ...rolledBack(v, input.step), paused: null },
        input.step < input.from ? `run resumed: rolled back from step ${input.from} to step ${input.step}` : `run resumed at step ${input.step}`,
      );
    case 'restart': {
      const note = `step ${input.step} re-run (attempt ${input.attempt + 1}): ${input.reason}`;
      return logged({ ...v, restarts: v.restarts + 1, note }, note);
    }
    case 'ledger':
      return { ...v, ledger: input.rows.map((r) => ({ ...r })) };
    case 'step': {
      const r = input.report;
      const applied = new Set(r.members.flat());
      // Middle stages send no per-microbatch message: a step's members did their part.
      const peers = v.peers.map((p) => (applied.has(p.id) && !SETTLED.has(p.state) ? { ...p, state: 'applied' as const } : p));
      return {
        ...withLoss(v, r.step, r.loss),
        phase: 'training',
        peers,
        stages: withMembers(v.stages, r.members),
        // A step re-run after a rollback replaces its old report.
        reports: [...v.reports.filter((x) => x.step < r.step), r],
        tokens: v.tokens + v.tokensPerStep,
        fp32: v.run ? addWireBytes(v.fp32, fp32StepWireBytes(v.run, r.members)) : v.fp32,
      };
    }
  }
}

function onControl(v: RunView, from: string, msg: ControlMessage): RunView {
  switch (msg.type) {
    case 'peer-info':
      return withPeer(v, from, (p) => ({ ...p, platform: msg.platform, throughput: msg.throughput ?? 0, state: 'joined' }));
    case 'swarm-ready':
      return withPeer(v, from, (p) => ({ ...p, state: 'ready' }));
    case 'mb-done':
    case 'mb-loss': {
      // One count per microbatch and stage: the first stage reports mb-done, the last mb-loss (a single stage both).
      const counts = (p: PeerView) => (msg.type === 'mb-done') === (p.stage === 0 || p.stage === null);
      return withPeer(v, from, (p) => ({ ...p, microbatches: p.microbatches + (counts(p) ? 1 : 0), state: 'forward/backward' }));
    }
    case 'grad-sumsq':
      return withPeer(v, from, (p) => ({ ...p, state: 'reducing' }));
    case 'step-done': {
      const next = withPeer(v, from, (p) => ({ ...p, state: 'applied' }));
      return msg.wire ? { ...next, wire: addWireBytes(next.wire, msg.wire) } : next;
    }
    case 'sync-done':
      return msg.wire ? { ...v, wire: addWireBytes(v.wire, msg.wire) } : v;
    case 'status':
      if (msg.state !== 'error') return v;
      return logged(
        withPeer(v, from, (p) => ({ ...p, state: 'error', detail: (msg.detail ?? '').slice(0, MAX_DETAIL) })),
        `${from} reports an error: ${msg.detail ?? ''}`,
      );
    case 'peer-report':
      return logged(v, `${from} dropped what ${msg.peer} sent: ${msg.reason}`);
    case 'run-state':
      // A contributor hears of a pause from the coordinator; a resume below its step is a rollback.
      if (msg.paused) return { ...v, paused: { reason: msg.reason, step: msg.step } };
      return v.paused || msg.step < v.step ? { ...rolledBack(v, msg.step), paused: null } : v;
    case 'credit': {
      const { credits, total, contributors, validated, strikes } = msg;
      return { ...v, credit: { credits, total, share: total > 0 ? Math.min(1, credits / total) : 0, contributors, validated, strikes } };
    }
    case 'step-report': {
      // What a contributor learns of the run: the coordinator's per-step loss.
      let next = withLoss(v, msg.step, msg.loss ?? Number.NaN);
      // The run's wire figures, as the coordinator counted them.
      if (msg.wire && msg.fp32 && msg.tokens !== undefined) next = { ...next, wire: msg.wire, fp32: msg.fp32, tokens: msg.tokens };
      return next.phase === 'idle' || next.phase === 'waiting' ? { ...next, phase: 'training' } : next;
    }
    default:
      return v;
  }
}

/**
 * The run back at step k (a rollback): the losses and reports of steps >= k are dropped (the re-run steps bring
 * theirs), so the loss curve stays continuous; the tokens and fp32 figures count the kept steps only.
 */
function rolledBack(v: RunView, k: number): RunView {
  if (k >= v.step) return v;
  const dropped = v.step - k;
  const reports = v.reports.filter((r) => r.step < k);
  const run = v.run;
  const fp32 = run ? reports.reduce((w, r) => addWireBytes(w, fp32StepWireBytes(run, r.members)), emptyWireBytes()) : v.fp32;
  return { ...v, step: k, losses: v.losses.slice(0, k), reports, tokens: Math.max(0, v.tokens - dropped * v.tokensPerStep), fp32 };
}

/** The view with peer `id` (created if new) replaced by f(peer). */
function withPeer(v: RunView, id: string, f: (p: PeerView) => PeerView): RunView {
  const i = v.peers.findIndex((p) => p.id === id);
  const peers = [...v.peers];
  if (i < 0) peers.push(f({ id, platform: '?', throughput: 0, stage: null, state: 'in room', microbatches: 0 }));
  else peers[i] = f(peers[i]);
  return { ...v, peers };
}

function withMembers(stages: StageView[], members: string[][]): StageView[] {
  return stages.map((s, i) => ({ ...s, members: [...(members[i] ?? [])] }));
}

/** Records step `step`'s loss (gaps before it are NaN) and the steps completed. */
function withLoss(v: RunView, step: number, loss: number): RunView {
  const losses = [...v.losses];
  while (losses.length < step) losses.push(Number.NaN);
  losses[step] = Number.isFinite(loss) ? loss : Number.NaN;
  return { ...v, losses, step: Math.max(v.step, step + 1) };
}

function logged(v: RunView, text: string): RunView {
  const events = [...v.events, { step: v.step, text }];
  return { ...v, events: events.length > MAX_EVENTS ? events.slice(-MAX_EVENTS) : events };
}

// ------------------------------------------------------------------------------------------- derived figures

/** Tokens/s over the finished steps: every step's M*B*T over the sum of the step times. */
export function runTokensPerSecond(v: RunView): number {
  const ms = v.reports.reduce((a, r) => a + r.ms, 0);
  return ms > 0 ? (v.reports.length * v.tokensPerStep * 1000) / ms : 0;
}

/** Tokens/s of one step. */
export function stepTokensPerSecond(v: RunView, r: StepReport): number {
  return (v.tokensPerStep * 1000) / Math.max(r.ms, 1e-3);
}

/** The run's last known loss (NaN: none yet). */
export function lastLoss(v: RunView): number {
  for (let i = v.losses.length - 1; i >= 0; i--) if (Number.isFinite(v.losses[i])) return v.losses[i];
  return Number.NaN;
}

/** The one-line JSON summary the coordinator and demo commands end with. */
export interface RunSummary {
  steps: number;
  peers: number;
  stages: number;
  first_loss: number;
  last_loss: number;
  tokens_per_s: number;
}

export function runSummary(v: RunView): RunSummary {
  const peers = new Set(v.reports.flatMap((r) => r.members.flat()));
  return {
    steps: v.reports.length,
    peers: peers.size,
    stages: v.stages.length,
    first_loss: v.reports[0]?.loss ?? Number.NaN,
    last_loss: v.reports[v.reports.length - 1]?.loss ?? Number.NaN,
    tokens_per_s: runTokensPerSecond(v),
  };
}

// ------------------------------------------------------------------------------------------- time accounting

/**
 * Per stage: where its step time went over the latest `last` steps that reported it (the mean of the reports'
 * per-stage times, src/protocol/stage-time.ts); null for a stage no such step reported.
 */
export function stageTimes(v: RunView, last = 10): (StageTime | null)[] {
  const withTime = v.reports.filter((r) => r.time && r.time.length > 0).slice(-last);
  const S = Math.max(v.stages.length, ...withTime.map((r) => r.time?.length ?? 0));
  return Array.from({ length: S }, (_, s) => meanStageTime(withTime.flatMap((r) => r.time?.[s] ?? [])));
}

// ------------------------------------------------------------------------------------------- wire accounting

/** Bytes per trained token, all categories together (0 before the first step). */
export function totalWireBytesPerToken(v: RunView): number {
  return v.tokens > 0 ? totalWireBytes(v.wire) / v.tokens : 0;
}

/** Bytes per trained token, per category (all 0 before the first step). */
export function wireBytesPerToken(v: RunView): WireBytes {
  const out = emptyWireBytes();
  if (v.tokens <= 0) return out;
  for (const k of [...WIRE_CATEGORIES, 'other'] as const) out[k] = v.wire[k] / v.tokens;
  return out;
}

/**
 * How many times fewer bytes than today's fp32 wire for the same steps: per compressible category group and in
 * all (state and control count as sent in both: they have no compressed variant). NaN where nothing was expected
 * or nothing was sent.
 */
export interface WireRatios {
  /** Activations and their gradients (stage boundaries). */
  pipeline: number;
  sync: number;
  total: number;
}

export function fp32Ratios(v: RunView): WireRatios {
  const sum = (w: WireBytes, ks: readonly WireCategory[]) => ks.reduce((a, k) => a + w[k], 0);
  const ratio = (fp32: number, sent: number) => (fp32 > 0 && sent > 0 ? fp32 / sent : Number.NaN);
  const pipe = ['activations', 'activation_grads'] as const;
  const rest = v.wire.state + v.wire.control + v.wire.other;
  return {
    pipeline: ratio(sum(v.fp32, pipe), sum(v.wire, pipe)),
    sync: ratio(v.fp32.sync, v.wire.sync),
    total: ratio(sum(v.fp32, pipe) + v.fp32.sync + rest, totalWireBytes(v.wire)),
  };
}

/** One line of the wire figures: bytes/token per category and the ratios to fp32. */
export function wireLine(v: RunView): string {
  const b = wireBytesPerToken(v);
  const r = fp32Ratios(v);
  const x = (n: number) => (Number.isFinite(n) ? `${n >= 10 ? n.toFixed(0) : n.toFixed(1)}x` : '-');
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  return (
    `wire B/token: act ${f(b.activations)} grad ${f(b.activation_grads)} sync ${f(b.sync)} state ${f(b.state)}${b.validation > 0 ? ` validation ${f(b.validation)}` : ''} control ${f(b.control)}` +
    `${b.other > 0 ? ` OTHER ${f(b.other)}` : ''}  vs fp32: pipeline ${x(r.pipeline)} sync ${x(r.sync)} total ${x(r.total)}`
  );
}

/**
 * The final JSON summary: runSummary's keys, then the validation loss of the final weights, the wire figures and the
 * ledger's credits per contributor.
 */
export interface FinalRunSummary extends RunSummary {
  /** Validation loss of the collected final weights (null: not evaluated). */
  val_loss: number | null;
  wire_bytes_per_token: Record<WireCategory, number>;
  /** Contributor id -> credits (FLOPs of verified work) after the last step. */
  ledger: Record<string, number>;
}

export function finalRunSummary(v: RunView, valLoss: number | null): FinalRunSummary {
  const b = wireBytesPerToken(v);
  return {
    ...runSummary(v),
    val_loss: valLoss !== null && Number.isFinite(valLoss) ? valLoss : null,
    wire_bytes_per_token: {
      activations: b.activations,
      activation_grads: b.activation_grads,
      sync: b.sync,
      state: b.state,
      validation: b.validation,
      control: b.control,
    },
    ledger: Object.fromEntries(v.ledger.map((r) => [r.id, r.credits])),
  };
}
