// `tabswarm simulate`'s engine: a discrete-event run of the REAL coordinator (assignment, membership epochs, step
// attempts, microbatch deadlines, liveness pings, rebalancing, trace agreement, validation sampling, juries, strikes
// and eviction: src/coordinator, imported) against simulated peers (sim-peer.ts) on a virtual clock
// (virtual-clock.ts). Peers join, leave, reload and return on their profiles' schedules; adversaries compute wrong
// results. The summary's coordinator CPU is measured (process CPU time of the coordinator's own events), not simulated.
import { isCompressNone } from '../coordinator/compress-option';
import { Coordinator } from '../coordinator/coordinator';
import { evenStages } from '../coordinator/run-builder';
import { payloadBytes } from '../compress/wire-format';
import { DEFAULT_OPTIMIZER } from '../model/stage';
import { ephemeralIdentity, type Identity } from '../net/identity';
import type { ControlMessage } from '../protocol/messages';
import { parseRunConfig, type RunConfig } from '../protocol/run-config';
import { scenarioCompress } from './microbatch-cost';
import { SimControlPlane } from './sim-control-plane';
import { SimPeer, type SimWorld } from './sim-peer';
import type { Scenario, SimInput, SimSummary } from './types';
import { VirtualClock } from './virtual-clock';

/** Share of contributions a validator recomputes, and strikes to eviction (docs/trust.md). */
export const SIM_TRUST = { aggregation: 'sum', validationRate: 0.25, strikes: 3 } as const;

export interface SimInvariants {
  /** Steps whose final attempt did not get exactly one mb-loss and one mb-done per microbatch (must be empty). */
  badSteps: number[];
  /** Every evicted peer is an adversary. */
  evictedAllAdversaries: boolean;
  evicted: string[];
  restarts: number;
  /** Coordinator messages the protocol's schema refused (e.g. a stage over the 256-member cap), by why. */
  refused: Record<string, number>;
  /** Strikes against honest peers, by reason (should be none, or a hint at what the coordinator gets wrong). */
  honestStrikes?: Record<string, number>;
  /** Virtual ms of the completed steps (the coordinator's StepReport.ms, step-begin to update out): median, 90th. */
  stepMs?: { median: number; p90: number };
  /**
   * Median virtual ms of a completed step's phases: microbatches (step-begin to step-reduce), reduce (to the first
   * validate, or to step-apply when none was sampled), validation (first validate to step-apply).
   */
  phasesMs?: { microbatches: number; reduce: number; validation: number };
  /** Why the coordinator's run ended before the virtual time did (e.g. a replica lost during a local-steps sync). */
  coordinatorError?: string;
  /** The most peers the coordinator kept on standby (its membership messages could not carry them), and why. */
  standby?: { peers: number; why: string };
  /** Validations answered, and the steps they were of (the first few): what the trust layer checked. */
  validations?: { answered: number; steps: number[] };
  /** Local-steps mode: outer syncs whose replicas of a stage reported different params digests. */
  syncsDisagreeing?: number;
  /**
   * Local-steps mode: completed steps in which two lanes of a stage confirmed the same params digest at step-done
   * (lanes train on different microbatches between syncs: should be none).
   */
  lanesAlike?: number;
  /** Events the virtual clock ran, and the virtual seconds reached. */
  events: number;
  virtualS: number;
}

export interface SimResult {
  summary: SimSummary;
  invariants: SimInvariants;
}

/**
 * The run the coordinator is given: the scenario's model in `stages` even stages, validators on, and the scenario's
 * compression as `tabswarm coordinator --compress` builds it (left out when it is none, as the run builder does), so
 * the coordinator runs the sync mode the scenario names.
 */
export function simRun(sc: Scenario): RunConfig {
  const compress = scenarioCompress(sc);
  const schedule = { lr: 3e-4, minLr: 3e-5, warmup: 10, decaySteps: 100_000 };
  return parseRunConfig({
    runId: `sim-${sc.seed}`,
    model: sc.model,
    stages: evenStages(sc.model.n_layer, sc.stages),
    B: sc.B,
    T: sc.model.block_size,
    M: sc.M,
    steps: 1_000_000_000,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: schedule.lr },
    seed: sc.seed,
    trust: { ...SIM_TRUST },
    ...(isCompressNone(compress) ? {} : { compress }),
  });
}

/** fp32 parameters of a stage: its transformer blocks (12 C^2 + 13 C each), embeddings on the first, ln_f on the last. */
function stageParams(run: RunConfig, stage: number): number {
  const { n_embd: C, vocab_size: V, block_size: T } = run.model;
  const r = run.stages[stage];
  let n = (r.layerEnd - r.layerStart) * (12 * C * C + 13 * C);
  if (stage === 0) n += V * C + T * C;
  if (stage === run.stages.length - 1) n += 2 * C;
  return n;
}

export async function runSimulation(input: SimInput): Promise<SimResult> {
  const { scenario: sc, profiles, cost } = input;
  const run = simRun(sc);
  const identities: Identity[] = [];
  for (let i = 0; i < profiles.length; i++) identities.push(await ephemeralIdentity()); // before the clock is faked
  const clock = new VirtualClock();
  const peers = new Map<string, SimPeer>();
  const passes = new Map<string, number>(); // `${step}:${attempt}` -> microbatch passes run in it
  let bytes = 0;
  const plane = new SimControlPlane(clock);
  const world: SimWorld = {
    clock,
    plane,
    run,
    peer: (id) => peers.get(id),
    activationBytes: cost.activationBytes,
    gradBytes: cost.gradBytes,
    stageParamBytes: (s) => 4 * stageParams(run, s),
    reduceBytes: (s) => (cost.reduceBytesPerParam ?? 4) * stageParams(run, s),
    syncBytes: (s) => {
      const sync = run.compress?.sync;
      if (sync?.mode !== 'local') throw new Error('syncBytes: the run is not in local-steps mode');
      return payloadBytes(sync.codec, stageParams(run, s));
    },
    countPass: (_p, step, attempt) => passes.set(`${step}:${attempt}`, (passes.get(`${step}:${attempt}`) ?? 0) + 1),
    countBytes: (_p, b) => (bytes += b),
  };
  profiles.forEach((p, i) => {
    const peer = new SimPeer(p, identities[i], world);
    peers.set(p.id, peer);
    plane.add(peer);
  });
  // Every mb-loss / mb-done the coordinator is handed, per (step, attempt, mb): the no-loss-no-double-count check.
  const reported = new Map<string, number>();
  const stepDigests = new Map<string, string[]>(); // `${step}:${attempt}:${stage}` -> the replicas' step-done digests
  plane.onDelivered.push((_from: string, msg: ControlMessage) => {
    if (msg.type === 'step-done') {
      const k = `${msg.step}:${msg.attempt}:${msg.stage}`;
      stepDigests.set(k, [...(stepDigests.get(k) ?? []), msg.digest]);
    }
    if (msg.type === 'mb-loss' || msg.type === 'mb-done') {
      const k = `${msg.type}:${msg.step}:${msg.attempt}:${msg.mb}`;
      reported.set(k, (reported.get(k) ?? 0) + 1);
    }
  });
  // When each completed attempt's phases began (the coordinator's broadcasts): where a step's time goes.
  const phaseAt = new Map<string, Partial<Record<'begin' | 'reduce' | 'validate' | 'apply', number>>>();
  plane.onSent.push((msg) => {
    if (msg.type !== 'step-begin' && msg.type !== 'step-reduce' && msg.type !== 'validate' && msg.type !== 'step-apply') return;
    const k = `${msg.step}:${msg.attempt}`;
    const ph = phaseAt.get(k) ?? {};
    const name = msg.type === 'validate' ? 'validate' : msg.type === 'step-begin' ? 'begin' : msg.type === 'step-reduce' ? 'reduce' : 'apply';
    ph[name] ??= clock.now();
    phaseAt.set(k, ph);
  });
  const atStart = profiles.filter((p) => p.joinAtS === 0).length;
  const coordinator = new Coordinator(plane, {
    run,
    minPeers: Math.max(sc.stages, Math.ceil(atStart / 2)),
    ownersBySpeed: sc.ownersBySpeed === true,
  });
  // The coordinator's standby (membership-budget.ts): the most peers it ever kept waiting, and why.
  let standby: { peers: number; why: string } | undefined;
  coordinator.events.on('standby', ({ peers, reasons }) => {
    if (peers > (standby?.peers ?? 0)) standby = { peers, why: reasons };
  });
  const evictedAt = new Map<string, number>();
  coordinator.events.on('evicted', ({ peerId }) => evictedAt.set(peerId, clock.now()));
  // Strikes against honest peers, by reason (digits dropped so that like reasons add up): what to look at first.
  const honestStrikes = new Map<string, number>();
  coordinator.events.on('strike', ({ peerId, reason }) => {
    if (peers.get(peerId)?.profile.adversary) return;
    const why = reason
      .replace(/[0-9a-f]{32}/g, '<peer>')
      .replace(/\d+/g, 'N')
      .slice(0, 160);
    honestStrikes.set(why, (honestStrikes.get(why) ?? 0) + 1);
  });
  let restarts = 0;
  coordinator.events.on('restart', () => restarts++);
  let answered = 0;
  const validatedSteps = new Set<number>();
  coordinator.events.on('validation', ({ step }) => {
    answered++;
    if (validatedSteps.size < 20) validatedSteps.add(step);
  });
  let coordinatorError: string | undefined;
  coordinator.finished().catch((err: unknown) => (coordinatorError = err instanceof Error ? err.message : String(err)));
  // Joins, departures and returns on the profiles' schedules.
  for (const p of profiles) {
    const peer = peers.get(p.id);
    if (!peer) continue;
    clock.at(p.joinAtS * 1000, 'peers', () => peer.join());
    for (const s of p.sessions) {
      clock.at(s.leaveAtS * 1000, 'peers', () => peer.leave());
      const back = s.returnAfterS;
      if (back !== null) clock.at((s.leaveAtS + back) * 1000, 'peers', () => !peer.evicted && peer.join());
    }
  }
  const endMs = sc.hours * 3600 * 1000;
  let nextProgress = 0;
  try {
    await clock.runUntil(endMs, (now) => {
      if (now >= nextProgress) {
        input.onProgress?.(now / 1000);
        nextProgress = now + 60_000;
      }
    });
  } finally {
    coordinator.close();
    clock.uninstall();
  }
  const reports = coordinator.reports;
  const badSteps: number[] = [];
  let recomputed = 0;
  for (const r of reports) {
    const final = r.attempts - 1;
    for (let a = 0; a < final; a++) recomputed += passes.get(`${r.step}:${a}`) ?? 0;
    for (let mb = 0; mb < run.M; mb++)
      if (reported.get(`mb-loss:${r.step}:${final}:${mb}`) !== 1 || reported.get(`mb-done:${r.step}:${final}:${mb}`) !== 1) {
        badSteps.push(r.step);
        break;
      }
  }
  const evicted = coordinator.evicted;
  const adversary = (id: string) => peers.get(id)?.profile.adversary ?? false;
  const evAdv = evicted.filter(adversary);
  const seconds = endMs / 1000;
  const steps = reports.length;
  const tokens = steps * run.M * run.B * run.T;
  // Ideal: every online peer's per-layer throughput, time-averaged, spent on the n_layer layers each token needs.
  let layerTokens = 0;
  for (const p of profiles) layerTokens += p.tokensPerSec * onlineSeconds(p, seconds);
  const ideal = layerTokens / seconds / run.model.n_layer;
  const tokensPerS = tokens / seconds;
  const evictSecs = evAdv.map((id) => ((evictedAt.get(id) ?? 0) - (peers.get(id)?.joinedAtMs ?? 0)) / 1000);
  const summary: SimSummary = {
    peers: profiles.length,
    tokens_per_s: tokensPerS,
    ideal_tokens_per_s: ideal,
    efficiency: ideal > 0 ? tokensPerS / ideal : 0,
    steps,
    steps_lost: restarts,
    microbatches_recomputed: recomputed,
    coordinator_cpu_ms_per_step: steps > 0 ? (clock.cpuUs.coordinator - plane.checkUs) / 1000 / steps : 0,
    control_msgs_per_s: plane.messages / seconds,
    bytes_per_peer_per_step: steps > 0 ? bytes / profiles.length / steps : 0,
    evicted_honest: evicted.length - evAdv.length,
    evicted_adversaries: evAdv.length,
    seconds_to_evict: evictSecs.length ? evictSecs.reduce((a, b) => a + b, 0) / evictSecs.length : null,
  };
  return {
    summary,
    invariants: {
      badSteps,
      evictedAllAdversaries: evAdv.length === evicted.length,
      evicted,
      restarts,
      refused: Object.fromEntries(plane.refused),
      stepMs: quantiles(reports.map((r) => r.ms)),
      phasesMs: phases(reports.map((r) => phaseAt.get(`${r.step}:${r.attempts - 1}`) ?? {})),
      honestStrikes: Object.fromEntries(honestStrikes),
      validations: { answered, steps: [...validatedSteps] },
      ...(coordinatorError !== undefined ? { coordinatorError } : {}),
      ...(standby ? { standby } : {}),
      ...(run.compress?.sync.mode === 'local'
        ? {
            syncsDisagreeing: reports.filter((r) => r.synced && !r.replicasAgree).length,
            lanesAlike: reports.filter((r) =>
              run.stages.some((_, s) => {
                const ds = stepDigests.get(`${r.step}:${r.attempts - 1}:${s}`) ?? [];
                return new Set(ds).size < ds.length;
              }),
            ).length,
          }
        : {}),
      events: clock.events,
      virtualS: clock.now() / 1000,
    },
  };
}

/** Seconds of [0, end) a profile's peer is online (joined, between its departures and returns). */
function onlineSeconds(p: SimInput['profiles'][number], end: number): number {
  let on = 0;
  let from: number | null = p.joinAtS;
  for (const s of [...p.sessions].sort((a, b) => a.leaveAtS - b.leaveAtS)) {
    if (from !== null && s.leaveAtS > from) on += Math.min(s.leaveAtS, end) - Math.min(from, end);
    from = s.returnAfterS === null ? null : s.leaveAtS + s.returnAfterS;
  }
  if (from !== null && from < end) on += end - from;
  return on;
}

function quantiles(xs: number[]): { median: number; p90: number } {
  const v = [...xs].sort((a, b) => a - b);
  const at = (q: number) => (v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : 0);
  return { median: at(0.5), p90: at(0.9) };
}

function phases(ps: Partial<Record<'begin' | 'reduce' | 'validate' | 'apply', number>>[]): {
  microbatches: number;
  reduce: number;
  validation: number;
} {
  const med = (xs: number[]) => quantiles(xs).median;
  const full = ps.filter((p) => p.begin !== undefined && p.reduce !== undefined && p.apply !== undefined);
  return {
    microbatches: med(full.map((p) => (p.reduce ?? 0) - (p.begin ?? 0))),
    reduce: med(full.map((p) => (p.validate ?? p.apply ?? 0) - (p.reduce ?? 0))),
    validation: med(full.filter((p) => p.validate !== undefined).map((p) => (p.apply ?? 0) - (p.validate ?? 0))),
  };
}
