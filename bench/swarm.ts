// Swarm benchmark: training throughput (tokens/s) of S=2 and S=4 pipelines of Node peers (in this process, each
// with its own GPU device, real signaling server and node-datachannel WebRTC on loopback) against the single-peer
// engine (Trainer) in the same run, on the same model and global batch (M microbatches of B sequences per step).
// Every pipeline runs ROUNDS times, each followed by the single peer; its ratio is the median of its rounds' ratios to
// the single runs on either side (the machine's speed drifts within seconds). Also the pipeline bubble: for every
// stage, the share of the step time its GPU work chain was idle (waiting for activations, gradients, the all-reduce or
// the coordinator), from the time accounting the peers report with each step (src/protocol/stage-time.ts: compute +
// codec is the chain's tasks).
//
// All peers share this machine's CPU/GPU: on a software adapter (lavapipe, 2 cores) a pipeline cannot beat one
// peer, and the numbers measure the swarm's overhead (transfers, synchronisation, bubble) rather than a speed-up.
import { type StepReport } from '../src/coordinator/coordinator';
import { evenStages } from '../src/coordinator/run-builder';
import { parseRunConfig, type RunConfig } from '../src/protocol/run-config';
import { nodeRuntime } from '../src/gpu/node-runtime';
import { loadCorpus } from '../src/model/corpus-node';
import { Dataset, sampleBatch } from '../src/model/data';
import { DEFAULT_OPTIMIZER } from '../src/model/stage';
import { CharTokenizer } from '../src/model/tokenizer';
import { Trainer } from '../src/model/trainer';
import { runEngineOptions } from '../src/coordinator/run-model';
import { withNodeSwarm } from './node-swarm';
import { meanStageTime, shareOf, STAGE_TIME_PARTS, type StageTime } from '../src/protocol/stage-time';
import { cpuPerStep, threadCpu, type ThreadCpu } from './thread-cpu';
import { controlCpuPerStep, payloadsPerStep, signatureCpuPerPayload, splitCpuPerStep, wireCpuPerPayload } from './swarm-costs';
import { availableParallelism } from 'node:os';
import { payloadBytes } from '../src/compress/codec';
import { COMPRESS_NONE, type CompressSpec } from '../src/compress/spec';

export interface SwarmBenchRow {
  config: string;
  /** The boundaries' codecs where not fp32. */
  compress?: CompressSpec;
  stages: number;
  peers: number;
  /** Median step time over the measured steps, ms. */
  medianStepMs: number;
  tokensPerS: number;
  /**
   * tokens/s relative to the single-peer engine: the median over the row's rounds of each round's ratio to the single
   * peer's runs right before and after it (this machine's speed drifts within seconds: the same single step measured
   * 240-390 ms in one hour, so a row is held against its neighbours, several times).
   */
  vsSingle: number;
  /** Swarm rows: each round's ratio (vsSingle is their median). */
  roundRatios?: number[];
  /** The single peer's median step over its runs next to this row's rounds (the single row: over all its runs). */
  singleMs: number;
  /** Per stage (mean over its replicas): idle share of the step time, 0..1. Empty for the single peer. */
  bubble: number[];
  /** Per stage: GPU-chain busy ms per step. */
  busyMsPerStep: number[];
  /** Per stage: where its step time went (the mean over the measured steps of the peers' reports). Empty: single. */
  stageTime: (StageTime | null)[];
  /** CPU ms per measured step of this process: the main thread, and every other thread (null: not Linux). */
  cpu: ThreadCpu | null;
  /** Swarm rows: the swarm's CPU per step split into parts measured apart in this run (bench/swarm-costs.ts). */
  costs?: SwarmCosts;
}

/** CPU ms per step (every thread) of a swarm row, by part; `rest` is the measured total less the others. */
export interface SwarmCosts {
  /** The same step's GPU work split into the stages on S devices, no network (bench/swarm-costs.ts). */
  splitMs: number;
  /** Boundary payloads per step, and the bytes of each. */
  payloads: number;
  payloadBytes: number;
  /** The payloads through a real WebRTC link. */
  wireMs: number;
  /** Their digests, signatures and verifications. */
  signaturesMs: number;
  /** A step's signed control messages through the signaling server, the coordinator and the peers. */
  controlMs: number;
  /** The rest: the stage runtime's bookkeeping, the schedule's wake-ups and waits on shared cores. */
  restMs: number;
  /** The swarm's CPU per step that 0.9x the single peer's tokens/s allows at the cores this row kept busy. */
  allowedFor09Ms: number;
  /** Best tokens/s vs the single peer this CPU per step allows with every core busy all the time. */
  cpuBoundVsSingle: number;
}

export interface SwarmBenchResult {
  model: RunConfig['model'];
  B: number;
  M: number;
  T: number;
  tokensPerStep: number;
  warmupSteps: number;
  measuredSteps: number;
  rows: SwarmBenchRow[];
}

const INT8_BOUNDARIES: CompressSpec = {
  ...COMPRESS_NONE,
  act: { kind: 'int8', block: 64, rounding: 'nearest' },
  grad: { kind: 'int8', block: 64, rounding: 'stochastic' },
};

const WARMUP = 2;
const MEASURE = 6;
/** Each pipeline row runs this many times, each time followed by the single peer. */
const ROUNDS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function benchRun(runId: string, vocab: number, S: number, opts: { B: number; M: number; slots?: number; compress?: CompressSpec }): RunConfig {
  const model = { n_layer: 4, n_head: 4, n_embd: 128, vocab_size: vocab, block_size: 64 };
  const steps = WARMUP + MEASURE;
  const schedule = { lr: 1e-3, minLr: 1e-4, warmup: 2, decaySteps: steps };
  return parseRunConfig({
    runId,
    model,
    stages: evenStages(model.n_layer, S),
    B: opts.B,
    T: model.block_size,
    M: opts.M,
    steps,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: schedule.lr },
    seed: 1337,
    ...(opts.slots ? { slots: opts.slots } : {}),
    ...(opts.compress ? { compress: opts.compress } : {}),
  });
}

async function single(data: Dataset, run: RunConfig): Promise<{ stepMs: number[]; cpu: ThreadCpu | null }> {
  const rt = await nodeRuntime({ quiet: true });
  try {
    const tr = await Trainer.create(rt, runEngineOptions(rt, run));
    const ms: number[] = [];
    let cpu0: ThreadCpu | null = null;
    for (let s = 0; s < run.steps; s++) {
      const micro = Array.from({ length: run.M }, (_, k) => sampleBatch(data.train, { seed: run.seed, step: s, micro: k, B: run.B, T: run.T }));
      if (s === WARMUP) cpu0 = threadCpu();
      const t0 = performance.now();
      await tr.step(s, micro);
      ms.push(performance.now() - t0);
    }
    return { stepMs: ms.slice(WARMUP), cpu: cpuPerStep(cpu0, threadCpu(), run.steps - WARMUP) };
  } finally {
    rt.destroy();
  }
}

interface SwarmRun {
  stepMs: number[];
  busyPerStage: number[][];
  stageTime: (StageTime | null)[];
  cpu: ThreadCpu | null;
}

function swarm(data: Dataset, run: RunConfig, log: (s: string) => void): Promise<SwarmRun> {
  const S = run.stages.length;
  return withNodeSwarm(data, run, async ({ coordinator }) => {
    let cpu0: ThreadCpu | null = null;
    coordinator.events.on('step', (r: StepReport) => {
      if (r.step === WARMUP - 1) cpu0 = threadCpu();
      log(`  S=${S} step ${r.step}: ${r.ms.toFixed(0)} ms loss ${r.loss.toFixed(4)}`);
    });
    const reports = await coordinator.finished();
    const cpu = cpuPerStep(cpu0, threadCpu(), reports.length - WARMUP);
    const measured = reports.slice(WARMUP);
    const stepMs = measured.map((r) => r.ms);
    const stageTime = Array.from({ length: S }, (_, s) => meanStageTime(measured.flatMap((r) => r.time?.[s] ?? [])));
    // Busy per stage per measured step (the replicas' mean): the chain's tasks, codecs included (stage-time.ts).
    const busyPerStage = Array.from({ length: S }, (_, s) =>
      measured.flatMap((r) => {
        const t = r.time?.[s];
        return t ? [t.compute + t.codec] : [];
      }),
    );
    return { stepMs, busyPerStage, stageTime, cpu };
  });
}

export async function benchSwarm(opts: { B?: number; M?: number; log?: (s: string) => void } = {}): Promise<SwarmBenchResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const B = opts.B ?? 4;
  const M = opts.M ?? 4;
  const text = loadCorpus();
  const data = Dataset.fromText(text, CharTokenizer.fromCorpus(text), { valFraction: 0.1 });
  const vocab = data.tokenizer!.vocabSize;
  const tokensPerStep = B * M * 64;
  log(
    `\nswarm (n_layer 4, n_head 4, n_embd 128, block 64; ${M} microbatches x ${B} sequences = ${tokensPerStep} tokens/step; ${WARMUP} warm-up + ${MEASURE} measured steps)`,
  );
  const rows: SwarmBenchRow[] = [];
  // The single peer runs first and after every pipeline run (ROUNDS per row): each round is held against the single
  // runs on either side of it (the machine's speed drifts). No matmul autotuning on either side (swarm peers do not
  // tune).
  const singles = [await single(data, benchRun('bench-single-0', vocab, 1, { B, M }))];
  const pending: SwarmBenchRow[] = [];
  // Every microbatch in flight (the default, slots = min(M, 8)), and 1F1B: S in flight, so the first stage starts
  // microbatch k + S only after the backward of k freed its slot (its chain then alternates backward, forward).
  // And S=4 with int8 boundaries (a quarter of the wire's bytes; lossy, so beside the exact rows, not instead).
  const configs: { S: number; slots?: number; compress?: CompressSpec; label: string }[] = [
    { S: 2, label: 'swarm S=2 x R=1' },
    { S: 2, slots: 2, label: 'swarm S=2 x R=1, 1F1B (2 in flight)' },
    { S: 4, label: 'swarm S=4 x R=1' },
    { S: 4, compress: INT8_BOUNDARIES, label: 'swarm S=4 x R=1, int8 boundaries' },
  ];
  for (const { S, slots, compress, label } of configs) {
    const id = `bench-s${S}${slots ? `-k${slots}` : ''}${compress ? '-int8' : ''}`;
    // ROUNDS times: the pipeline, then the single peer; each round's ratio against the single runs on either side.
    const runs: SwarmRun[] = [];
    const ratios: number[] = [];
    const near: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const r = await swarm(data, benchRun(`${id}-${round}`, vocab, S, { B, M, slots, compress }), log);
      const after = await single(data, benchRun(`bench-single-${singles.length}`, vocab, 1, { B, M }));
      const around = [...singles[singles.length - 1].stepMs, ...after.stepMs];
      singles.push(after);
      runs.push(r);
      ratios.push(median(around) / median(r.stepMs));
      near.push(...around);
    }
    const steps = runs.flatMap((r) => r.stepMs);
    const stepMs = median(steps);
    const totalStep = steps.reduce((a, b) => a + b, 0);
    const busy = Array.from({ length: S }, (_, s) => runs.flatMap((r) => r.busyPerStage[s] ?? []));
    const perStageBusy = busy.map((xs) => xs.reduce((a, b) => a + b, 0));
    const cpus = runs.flatMap((r) => (r.cpu ? [r.cpu] : []));
    pending.push({
      config: label,
      compress,
      stages: S,
      peers: S,
      medianStepMs: stepMs,
      tokensPerS: (tokensPerStep * 1000) / stepMs,
      vsSingle: median(ratios),
      roundRatios: ratios,
      singleMs: median(near),
      busyMsPerStep: perStageBusy.map((b, s) => b / Math.max(1, busy[s].length)),
      bubble: perStageBusy.map((b) => Math.max(0, 1 - b / totalStep)),
      stageTime: Array.from({ length: S }, (_, s) => meanStageTime(runs.flatMap((r) => r.stageTime[s] ?? []))),
      cpu: cpus.length === runs.length ? { mainMs: median(cpus.map((c) => c.mainMs)), otherMs: median(cpus.map((c) => c.otherMs)) } : null,
    });
  }
  const cpus = singles.map((s) => s.cpu);
  const singleCpu = cpus.every((c) => c !== null) ? { mainMs: median(cpus.map((c) => c.mainMs)), otherMs: median(cpus.map((c) => c.otherMs)) } : null;
  const singleMs = median(singles.flatMap((s) => s.stepMs));
  rows.push({
    config: 'single peer (Trainer)',
    stages: 1,
    peers: 1,
    medianStepMs: singleMs,
    tokensPerS: (tokensPerStep * 1000) / singleMs,
    vsSingle: 1,
    singleMs,
    bubble: [],
    busyMsPerStep: [],
    stageTime: [],
    cpu: singleCpu,
  });
  rows.push(...pending);
  await addCosts(data, vocab, { B, M }, rows, log);
  console.table(
    rows.map((r) => ({
      config: r.config,
      'median step ms': r.medianStepMs.toFixed(1),
      'tokens/s': r.tokensPerS.toFixed(0),
      'vs single': r.vsSingle.toFixed(2),
      'rounds (vs single nearby)': r.roundRatios?.map((x) => x.toFixed(2)).join(' ') ?? '-',
      'busy ms/step per stage': r.busyMsPerStep.map((x) => x.toFixed(0)).join(' / ') || '-',
      'bubble (idle share) per stage': r.bubble.map((x) => `${(x * 100).toFixed(0)}%`).join(' / ') || '-',
    })),
  );
  log("\nwhere each stage's step time goes (ms per step, mean of the measured steps; src/protocol/stage-time.ts)");
  console.table(
    rows.flatMap((r) =>
      r.stageTime.map((t, s) => ({
        config: r.config,
        stage: s,
        'wall ms': t ? t.wall.toFixed(0) : '-',
        ...Object.fromEntries(STAGE_TIME_PARTS.map((k) => [k, t ? `${t[k].toFixed(0)} (${(100 * shareOf(t, k)).toFixed(0)}%)` : '-'])),
      })),
    ),
  );
  log('\nCPU per step of this process (ms; 2 shared cores: a step cannot take less than the total over the cores)');
  console.table(
    rows.map((r) => ({
      config: r.config,
      'main thread': r.cpu ? r.cpu.mainMs.toFixed(0) : '-',
      'other threads (driver, WebRTC, pool)': r.cpu ? r.cpu.otherMs.toFixed(0) : '-',
      total: r.cpu ? (r.cpu.mainMs + r.cpu.otherMs).toFixed(0) : '-',
      'vs single': r.cpu && singleCpu ? ((r.cpu.mainMs + r.cpu.otherMs) / (singleCpu.mainMs + singleCpu.otherMs)).toFixed(2) : '-',
      'cores busy': r.cpu ? ((r.cpu.mainMs + r.cpu.otherMs) / r.medianStepMs).toFixed(2) : '-',
    })),
  );
  log("\nwhere the swarm's CPU goes (ms per step, every thread; parts measured apart in this run, bench/swarm-costs.ts)");
  console.table(
    rows.flatMap((r) => {
      const c = r.costs;
      if (!c || !r.cpu) return [];
      return [
        {
          config: r.config,
          'swarm CPU': (r.cpu.mainMs + r.cpu.otherMs).toFixed(0),
          'split onto S devices (no network)': c.splitMs.toFixed(0),
          [`wire (payloads x KiB)`]: `${c.wireMs.toFixed(0)} (${c.payloads} x ${(c.payloadBytes / 1024).toFixed(0)})`,
          signatures: c.signaturesMs.toFixed(0),
          'control messages': c.controlMs.toFixed(0),
          rest: c.restMs.toFixed(0),
          'CPU that 0.9x allows': c.allowedFor09Ms.toFixed(0),
          'CPU-bound best vs single': c.cpuBoundVsSingle.toFixed(2),
        },
      ];
    }),
  );
  return {
    model: { n_layer: 4, n_head: 4, n_embd: 128, vocab_size: vocab, block_size: 64 },
    B,
    M,
    T: 64,
    tokensPerStep,
    warmupSteps: WARMUP,
    measuredSteps: MEASURE,
    rows,
  };
}

/** `measure` once per key of its argument, in the order asked (the measurements run one after another, never together). */
function once<A, V>(keyOf: (a: A) => string | number, measure: (a: A) => Promise<V>): (a: A) => Promise<V> {
  const seen = new Map<string | number, Promise<V>>();
  return (a) => {
    const k = keyOf(a);
    let p = seen.get(k);
    if (!p) {
      p = measure(a);
      seen.set(k, p);
    }
    return p;
  };
}

/**
 * The swarm rows' CPU per step by part (SwarmCosts): the stage split measured once per stage count and codecs, the
 * wire and the signatures once per payload size, the control messages once per stage count; what 0.9x would allow:
 * (the single step next to the row / 0.9) x the cores the row kept busy.
 */
async function addCosts(data: Dataset, vocab: number, o: { B: number; M: number }, rows: SwarmBenchRow[], log: (s: string) => void): Promise<void> {
  const swarmRows = rows.filter((r) => r.stages > 1 && r.cpu);
  if (swarmRows.length === 0) return;
  log('\nmeasuring the parts of a swarm step apart: the stage split, the wire, the signatures, the control messages');
  // A codec's kernels are part of its stages' GPU work: the split is per stage count and codecs.
  const split = once(splitKey, (r: SwarmBenchRow) =>
    splitCpuPerStep(data, benchRun(`bench-split-s${r.stages}`, vocab, r.stages, { ...o, compress: r.compress }), MEASURE),
  );
  const perPayload = once(
    (bytes: number) => bytes,
    async (bytes: number) => ({ wire: await wireCpuPerPayload(bytes), sig: await signatureCpuPerPayload(bytes) }),
  );
  const control = once(
    (S: number) => S,
    (S: number) => controlCpuPerStep(S, o.M),
  );
  const cores = availableParallelism();
  for (const r of swarmRows) {
    if (!r.cpu) continue;
    const total = r.cpu.mainMs + r.cpu.otherMs;
    const run = benchRun('bench-payload', vocab, r.stages, { ...o, compress: r.compress });
    const values = run.B * run.T * run.model.n_embd;
    const compress = run.compress ?? COMPRESS_NONE;
    // Half the payloads are activations, half their gradients, each with its codec.
    const sizes = [payloadBytes(compress.act, values), payloadBytes(compress.grad, values)];
    const payloads = payloadsPerStep(run);
    let wireMs = 0;
    let signaturesMs = 0;
    for (const bytes of sizes) {
      const c = await perPayload(bytes);
      wireMs += (payloads / 2) * c.wire;
      signaturesMs += (payloads / 2) * c.sig;
    }
    const splitMs = await split(r);
    const controlMs = await control(r.stages);
    r.costs = {
      splitMs,
      payloads,
      payloadBytes: (sizes[0] + sizes[1]) / 2,
      wireMs,
      signaturesMs,
      controlMs,
      restMs: total - splitMs - wireMs - signaturesMs - controlMs,
      allowedFor09Ms: (r.singleMs / 0.9) * (total / r.medianStepMs),
      cpuBoundVsSingle: r.singleMs / (total / cores),
    };
  }
}

function splitKey(r: SwarmBenchRow): string {
  return `${r.stages}:${JSON.stringify(r.compress ?? null)}`;
}
