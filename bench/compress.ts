// Compression benchmark (`npm run bench -- compress`): bytes per trained token per wire category and validation loss,
// side by side, for the reference model (n_layer 4, n_head 4, n_embd 128, block 64) split in 2 and 4 stages, at
// equal steps and equal tokens (every row trains the same steps on the same batches: micro k of step s is
// sampleBatch(seed, s, k)), plus one wider model (n_embd 384, fewer steps) and the replica sync modes.
//
//   - Validation loss: the single-peer engine with the run's codecs at the run's boundaries and its bottleneck (the
//     Trainer; tests/swarm/parity*.test.ts prove the swarm ends on its weights), and for local-steps sync the
//     single-process simulation of R replicas (simulateLocalSteps; tests/swarm/local-steps*.test.ts prove the swarm
//     matches it). Evaluated on the same validation batches as `tabswarm eval`.
//   - Bytes per token: from the codecs' exact payload sizes (src/compress payloadBytes; fp32 is the raw f32 bytes)
//     and the pipeline's other tensor (the tied wte gradient each step; targets never travel), payload
//     only; then checked against a short REAL swarm run's transport counters (Node peers over WebRTC on loopback,
//     src/net WireMeter -> step-done) for a few configs: the difference is the framing (chunk headers and the JSON
//     descriptor of every tensor).
//   - Ratios divide today's fp32 wire (no bottleneck, exact per-step all-reduce) for the same tokens by the row's.
//
// Steps: TABSWARM_COMPRESS_STEPS (default 80) for the pipeline rows, twice that for the sync rows (so H = 100 syncs
// twice: after step 100 and the last), a third of it for the wide model (a step of n_embd 384 costs ~6x); ~30 min on 2 shared lavapipe cores.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { payloadBytes } from '../src/compress/codec';
import { COMPRESS_NONE, type CodecSpec, type CompressSpec } from '../src/compress/spec';
import { formatCompress, parseCompressOption } from '../src/coordinator/compress-option';
import { nodeRuntime } from '../src/gpu/node-runtime';
import type { GPTConfig } from '../src/model/config';
import { loadCorpus } from '../src/model/corpus-node';
import { Dataset, sampleBatch } from '../src/model/data';
import { simulateLocalSteps } from '../src/model/local-sim';
import { DEFAULT_OPTIMIZER } from '../src/model/stage';
import { CharTokenizer } from '../src/model/tokenizer';
import { Trainer } from '../src/model/trainer';
import { runEngineOptions, runLocalSimOptions } from '../src/coordinator/run-model';
import { EVAL_B, validationLoss } from '../src/coordinator/val-loss';
import { fp32StepWireBytes } from '../src/protocol/wire-categories';
import { evenStages } from '../src/coordinator/run-builder';
import { parseRunConfig, type RunConfig } from '../src/protocol/run-config';
import { swarmWireBytes } from './compress-swarm';

/** Sequences per microbatch and microbatches per step: 4 x 2 x 64 = 512 tokens per step (one lane each for R = 2). */
const B = 4;
const M = 2;
const EVAL_BATCHES = 20;
const SEED = 1337;
/** Replicas per stage in the sync rows (lanes of the local-steps simulation). */
const R_SYNC = 2;

export interface CompressBenchRow {
  group: 'pipeline' | 'wide' | 'sync';
  /** The compress spec, compact form (src/coordinator/compress-option.ts). */
  config: string;
  n_embd: number;
  stages: number;
  replicas: number;
  steps: number;
  tokens: number;
  /** Payload bytes per trained token by category (sync includes the tied wte). */
  bytesPerToken: { activations: number; activation_grads: number; sync: number };
  /** fp32 (no bottleneck, per-step all-reduce) over this row: activations + gradients; sync. NaN where none. */
  pipelineRatio: number;
  syncRatio: number;
  /** Mean train loss of the last 10 steps; validation loss of the final weights; val loss over the group's baseline - 1. */
  trainLoss: number;
  valLoss: number;
  penalty: number;
  seconds: number;
}

export interface SwarmCheckRow {
  config: string;
  stages: number;
  steps: number;
  /** Bytes per token as the transports counted them (framing included) and as the codecs' payloads predict. */
  measured: { activations: number; activation_grads: number; sync: number };
  predicted: { activations: number; activation_grads: number; sync: number };
}

export interface CompressBenchResult {
  B: number;
  M: number;
  T: number;
  steps: number;
  wideSteps: number;
  syncSteps: number;
  evalBatches: number;
  rows: CompressBenchRow[];
  swarmCheck: SwarmCheckRow[];
}

function model(C: number, vocab: number): GPTConfig {
  return { n_layer: 4, n_head: 4, n_embd: C, vocab_size: vocab, block_size: 64 };
}

function runOf(C: number, vocab: number, S: number, steps: number, compress: CompressSpec, runId = 'bench-compress'): RunConfig {
  const schedule = { lr: 1e-3, minLr: 1e-4, warmup: Math.min(20, Math.floor(steps / 10)), decaySteps: steps };
  const none = compress.act.kind === 'fp32' && compress.grad.kind === 'fp32' && !compress.bottleneck && compress.sync.mode === 'per-step';
  return parseRunConfig({
    runId,
    model: model(C, vocab),
    stages: evenStages(4, S),
    B,
    T: 64,
    M,
    steps,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: schedule.lr },
    seed: SEED,
    ...(none ? {} : { compress }),
  });
}

/** Payload bytes of n values under a codec as the pipeline sends them (fp32: raw f32, no header). */
function wireBytes(spec: CodecSpec, n: number): number {
  return spec.kind === 'fp32' ? 4 * n : payloadBytes(spec, n);
}

/** Predicted payload bytes per trained token of a pipeline run with one replica per stage. */
export function predictPipeline(run: RunConfig): CompressBenchRow['bytesPerToken'] {
  const c = run.compress ?? COMPRESS_NONE;
  const S = run.stages.length;
  const n = run.B * run.T;
  const w = c.bottleneck ? c.bottleneck.width : run.model.n_embd;
  const perMicro = (S - 1) / n;
  const tie = S > 1 ? 2 * run.model.vocab_size * run.model.n_embd * 4 : 0;
  return {
    activations: wireBytes(c.act, n * w) * perMicro,
    activation_grads: wireBytes(c.grad, n * w) * perMicro,
    sync: tie / (run.M * n),
  };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

async function trainPipeline(data: Dataset, run: RunConfig): Promise<{ trainLoss: number; valLoss: number }> {
  const rt = await nodeRuntime({ quiet: true });
  try {
    const tr = await Trainer.create(rt, runEngineOptions(rt, run));
    const losses: number[] = [];
    for (let s = 0; s < run.steps; s++) {
      const micro = Array.from({ length: run.M }, (_, k) => sampleBatch(data.train, { seed: run.seed, step: s, micro: k, B: run.B, T: run.T }));
      losses.push((await tr.step(s, micro)).loss);
    }
    const final = await tr.exportParams();
    // Validation as `tabswarm eval` (B = 12, T = block_size), the run's model (bottleneck included).
    const valLoss = await validationLoss(rt, run, final, data.val, { maxBatches: EVAL_BATCHES });
    return { trainLoss: mean(losses.slice(-10)), valLoss };
  } finally {
    rt.destroy();
  }
}

async function trainLocal(data: Dataset, run: RunConfig, R: number): Promise<{ trainLoss: number; valLoss: number; syncBytes: number }> {
  const rt = await nodeRuntime({ quiet: true });
  try {
    const sim = await simulateLocalSteps(rt, runLocalSimOptions(rt, run, data.train, R));
    const valLoss = await validationLoss(rt, run, sim.replicas[0], data.val, { maxBatches: EVAL_BATCHES });
    // All-gather: every replica sends its payload to each of the R-1 others, at every sync.
    const syncBytes = sim.payloadBytes.reduce((a, b) => a + b, 0) * (R - 1);
    return { trainLoss: mean(sim.losses.slice(-10)), valLoss, syncBytes };
  } finally {
    rt.destroy();
  }
}

const ratio = (fp32: number, x: number) => (x > 0 ? fp32 / x : Number.NaN);

function pipelineRow(group: CompressBenchRow['group'], run: RunConfig, r: { trainLoss: number; valLoss: number }, seconds: number): CompressBenchRow {
  const b = predictPipeline(run);
  const tokens = run.steps * run.M * run.B * run.T;
  const fp32 = fp32StepWireBytes(
    run,
    run.stages.map(() => ['p']),
  );
  const perTok = (x: number) => x / (run.M * run.B * run.T);
  return {
    group,
    config: formatCompress(run.compress ?? COMPRESS_NONE),
    n_embd: run.model.n_embd,
    stages: run.stages.length,
    replicas: 1,
    steps: run.steps,
    tokens,
    bytesPerToken: b,
    pipelineRatio: ratio(perTok(fp32.activations + fp32.activation_grads), b.activations + b.activation_grads),
    syncRatio: ratio(perTok(fp32.sync), b.sync),
    trainLoss: r.trainLoss,
    valLoss: r.valLoss,
    penalty: Number.NaN,
    seconds,
  };
}

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');

export function printCompressTable(rows: CompressBenchRow[]): void {
  console.table(
    rows.map((r) => ({
      group: r.group,
      config: r.config,
      C: r.n_embd,
      SxR: `${r.stages}x${r.replicas}`,
      steps: r.steps,
      'act B/tok': fmt(r.bytesPerToken.activations),
      'grad B/tok': fmt(r.bytesPerToken.activation_grads),
      'sync B/tok': fmt(r.bytesPerToken.sync),
      'pipe x': fmt(r.pipelineRatio, 1),
      'sync x': fmt(r.syncRatio, 1),
      'train loss': fmt(r.trainLoss, 4),
      'val loss': fmt(r.valLoss, 4),
      'val penalty': Number.isFinite(r.penalty) ? `${(r.penalty * 100).toFixed(1)}%` : '-',
    })),
  );
}

/** The configs of one run of the bench (compact compress forms). */
export const PIPELINE_CONFIGS = [
  'none',
  'pipe=fp16',
  'pipe=int8',
  'pipe=int4',
  'bottleneck=32',
  'bottleneck=16',
  'bottleneck=8',
  'bottleneck=32p',
  'bottleneck=16p',
  'bottleneck=8p',
  'bottleneck=16,pipe=int8',
  'bottleneck=16p,pipe=int8',
  'bottleneck=8p,pipe=int8',
  'bottleneck=16p,pipe=int4',
  'bottleneck=8p,pipe=int4',
];
export const FOUR_STAGE_CONFIGS = ['none', 'pipe=int8', 'bottleneck=16p,pipe=int8', 'bottleneck=8p,pipe=int4'];
/** TABSWARM_COMPRESS_PIPELINE (semicolon-separated compress options) replaces the pipeline rows at 2 and 4 stages. */
const PIPELINE_OVERRIDE = process.env.TABSWARM_COMPRESS_PIPELINE?.split(';');
export const WIDE_CONFIGS = ['none', 'bottleneck=16p,pipe=int8', 'bottleneck=8p,pipe=int4'];
/** TABSWARM_COMPRESS_SYNC (semicolon-separated compress options) replaces the sync rows. */
export const SYNC_CONFIGS = process.env.TABSWARM_COMPRESS_SYNC
  ? process.env.TABSWARM_COMPRESS_SYNC.split(';')
  : [10, 50, 100].flatMap((H) => [`sync=local:H=${H}:int8`, `sync=local:H=${H}:topk:0.05`]);
/** Configs whose predicted bytes are checked against a real swarm's transport counters. */
export const SWARM_CHECK_CONFIGS = ['none', 'pipe=int8', 'bottleneck=16p,pipe=int4'];

export async function benchCompress(opts: { steps?: number; log?: (s: string) => void } = {}): Promise<CompressBenchResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const steps = opts.steps ?? Number(process.env.TABSWARM_COMPRESS_STEPS ?? 80);
  const wideSteps = Math.max(1, Math.round(steps / 3));
  const syncSteps = 2 * steps;
  const text = loadCorpus();
  const data = Dataset.fromText(text, CharTokenizer.fromCorpus(text), { valFraction: 0.1 });
  const vocab = data.tokenizer?.vocabSize ?? 0;
  log(
    `\ncompress (n_layer 4, n_head 4, block 64; ${M} microbatches x ${B} sequences = ${M * B * 64} tokens/step; ${steps} steps, wide ${wideSteps}, sync ${syncSteps}; ` +
      `val: ${EVAL_BATCHES} batches x ${EVAL_B})`,
  );
  const rows: CompressBenchRow[] = [];
  const withPenalty = (group: CompressBenchRow['group'], S: number, C: number) => {
    const base = rows.find((r) => r.group === group && r.stages === S && r.n_embd === C && r.config === formatCompress(COMPRESS_NONE));
    for (const r of rows) if (r.group === group && r.stages === S && r.n_embd === C && base) r.penalty = r.valLoss / base.valLoss - 1;
  };
  const pipeline = async (group: CompressBenchRow['group'], C: number, S: number, n: number, configs: string[]) => {
    for (const cfg of configs) {
      const run = runOf(C, vocab, S, n, parseCompressOption(cfg));
      const t0 = performance.now();
      const r = await trainPipeline(data, run);
      const row = pipelineRow(group, run, r, (performance.now() - t0) / 1000);
      rows.push(row);
      log(
        `  ${group} C=${C} S=${S} ${cfg}: val ${r.valLoss.toFixed(4)} train ${r.trainLoss.toFixed(4)}; act+grad ${fmt(row.bytesPerToken.activations + row.bytesPerToken.activation_grads)} B/tok (${fmt(row.pipelineRatio, 1)}x) in ${row.seconds.toFixed(0)} s`,
      );
    }
    withPenalty(group, S, C);
  };
  // TABSWARM_COMPRESS_PARTS (comma-separated: pipeline, wide, sync, swarm) runs only those parts.
  const parts = (process.env.TABSWARM_COMPRESS_PARTS ?? 'pipeline,wide,sync,swarm').split(',');
  if (parts.includes('pipeline')) {
    await pipeline('pipeline', 128, 2, steps, PIPELINE_OVERRIDE ?? PIPELINE_CONFIGS);
    await pipeline('pipeline', 128, 4, steps, PIPELINE_OVERRIDE ?? FOUR_STAGE_CONFIGS);
  }
  if (parts.includes('wide')) await pipeline('wide', 384, 2, wideSteps, WIDE_CONFIGS);

  // Replica sync: R replicas of the whole model (S = 1). Per-step fp32 is the exact all-reduce: the single engine on
  // all M microbatches computes the same step; local steps: the simulation of R lanes.
  const perStepRun = runOf(128, vocab, 1, syncSteps, COMPRESS_NONE);
  const fp32Sync = fp32StepWireBytes(perStepRun, [Array.from({ length: R_SYNC }, (_, i) => `r${i}`)]).sync;
  const tokPerStep = M * B * 64;
  if (parts.includes('sync')) {
    const t0 = performance.now();
    const r = await trainPipeline(data, perStepRun);
    const seconds = (performance.now() - t0) / 1000;
    rows.push({
      ...pipelineRow('sync', perStepRun, r, seconds),
      replicas: R_SYNC,
      bytesPerToken: { activations: 0, activation_grads: 0, sync: fp32Sync / tokPerStep },
      syncRatio: 1,
    });
    log(`  sync per-step fp32 (R=${R_SYNC}): val ${r.valLoss.toFixed(4)}; ${fmt(fp32Sync / tokPerStep)} B/tok`);
  }
  for (const cfg of parts.includes('sync') ? SYNC_CONFIGS : []) {
    const spec = parseCompressOption(cfg);
    const run = runOf(128, vocab, 1, syncSteps, spec);
    const t0 = performance.now();
    const r = await trainLocal(data, run, R_SYNC);
    const seconds = (performance.now() - t0) / 1000;
    const sync = r.syncBytes / (syncSteps * tokPerStep);
    rows.push({
      ...pipelineRow('sync', run, r, seconds),
      replicas: R_SYNC,
      bytesPerToken: { activations: 0, activation_grads: 0, sync },
      syncRatio: ratio(fp32Sync / tokPerStep, sync),
    });
    log(
      `  sync ${cfg} (R=${R_SYNC}): val ${r.valLoss.toFixed(4)}; ${fmt(sync)} B/tok (${fmt(fp32Sync / tokPerStep / sync, 0)}x) in ${seconds.toFixed(0)} s`,
    );
  }
  const base = rows.find((r) => r.group === 'sync' && r.config === formatCompress(COMPRESS_NONE));
  for (const r of rows) if (r.group === 'sync' && base) r.penalty = r.valLoss / base.valLoss - 1;

  // The predicted bytes against a real swarm's transport counters (short runs: bytes per token do not depend on steps).
  const swarmCheck: SwarmCheckRow[] = [];
  for (const cfg of parts.includes('swarm') ? SWARM_CHECK_CONFIGS : []) {
    const run = runOf(128, vocab, 2, 3, parseCompressOption(cfg), `bench-wire-${swarmCheck.length}`);
    const w = await swarmWireBytes(data, run);
    const tokens = run.steps * run.M * run.B * run.T;
    const p = predictPipeline(run);
    swarmCheck.push({
      config: cfg,
      stages: 2,
      steps: run.steps,
      measured: { activations: w.activations / tokens, activation_grads: w.activation_grads / tokens, sync: w.sync / tokens },
      predicted: { activations: p.activations, activation_grads: p.activation_grads, sync: p.sync },
    });
    log(
      `  swarm check ${cfg}: measured act ${fmt(w.activations / tokens)} grad ${fmt(w.activation_grads / tokens)} sync ${fmt(w.sync / tokens)} B/tok`,
    );
  }

  printCompressTable(rows);
  console.log('\nwire bytes per token, predicted (codec payloads) vs measured (a real 2-stage swarm, transport counters incl. framing)');
  console.table(
    swarmCheck.map((c) => ({
      config: c.config,
      'act predicted': fmt(c.predicted.activations),
      'act measured': fmt(c.measured.activations),
      'grad predicted': fmt(c.predicted.activation_grads),
      'grad measured': fmt(c.measured.activation_grads),
      'sync predicted': fmt(c.predicted.sync),
      'sync measured': fmt(c.measured.sync),
    })),
  );
  const result: CompressBenchResult = { B, M, T: 64, steps, wideSteps, syncSteps, evalBatches: EVAL_BATCHES, rows, swarmCheck };
  const dir = join(import.meta.dirname ?? '.', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'compress.json'), JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2));
  console.log(`wrote ${join(dir, 'compress.json')}`);
  return result;
}
