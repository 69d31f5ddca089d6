// A model larger than any one peer (issue 13; docs/model.md "A model larger than any one tab"): GPT-2 small (12
// layers, n_embd 768, 12 heads, the BPE vocabulary of 50,257, context 256) split across Node peers that each offer a
// memory budget below a third of the whole model's training memory. The coordinator plans the split from the
// budgets (planStages; src/model/layer-partition.ts), the peers train one step over real WebRTC, and the result is
// held against the single-process engine on the same init and batch (the swarm invariant), then saved to and loaded
// from HF-layout safetensors. Shared by tests/big/gpt2-split.test.ts and `npm run bench -- big` (bench/big.ts).
import { loadCorpus } from '../../src/model/corpus-node';
import { modelParamSpecs } from '../../src/model/bottleneck-config';
import { initParams } from '../../src/model/init';
import { Gpt2Tokenizer } from '../../src/model/bpe-tokenizer';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/model/checkpoint';
import type { GPTConfig } from '../../src/model/config';
import { sampleBatch } from '../../src/model/data';
import { LocalComputeBackend } from '../../src/model/stage-compute';
import { stageMemory } from '../../src/model/stage-memory';
import { Trainer } from '../../src/model/trainer';
import { DEFAULT_OPTIMIZER } from '../../src/model/stage';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import { runEngineOptions } from '../../src/coordinator/run-model';
import type { CoordinatorEvents } from '../../src/coordinator/coordinator';
import type { RunConfig } from '../../src/protocol/run-config';
import type { SwarmPeer } from '../../src/swarm/peer';
import { startSwarm, tensorDiff, worstDiffs, type Diff } from '../swarm/harness';

export const GPT2_SMALL: GPTConfig = { n_layer: 12, n_head: 12, n_embd: 768, vocab_size: 50257, block_size: 256 };

export interface BigSplitOptions {
  peers?: number;
  /** Sequences per microbatch (default 4: at B = 1 the tied wte and its AdamW state alone are over a third). */
  B?: number;
  T?: number;
  log?: (s: string) => void;
}

export interface BigSplitResult {
  peers: number;
  /** The model's parameters (tied head; wpe at the context of 256). */
  params: number;
  B: number;
  T: number;
  /** The whole model's training memory in one process: what the single-process engine allocated (bytes). */
  model_train_bytes: number;
  /** The same, from the stage memory model (src/model/stage-memory.ts processTotal; the Trainer adds 1 KiB). */
  model_planned_bytes: number;
  /** Each peer's budget (the same for all): below a third of model_planned_bytes. */
  budget_bytes: number;
  /** The most any peer allocated on its GPU (its runtime's storage buffers). */
  max_peer_train_bytes: number;
  /** The largest |after - init| over every weight: the step moved the model (parity of an unmoved model proves nothing). */
  update_max_abs: number;
  stages: { layers: [number, number]; peer: string; planned_bytes: number; allocated_bytes: number }[];
  /** Worst tensor max|swarm - single| / max|single| over every peer's parameters after the step. */
  parity_max_rel: number;
  /** Worst tensor max|swarm - single| / max(1, max|single|) (the swarm tests' score). */
  parity_max_score: number;
  parity_worst: string;
  loss_swarm: number;
  loss_single: number;
  /** The swarm's step: tokens per second of wall time (all peers in one process on this machine). */
  tokens_per_s: number;
  step_ms: number;
  single_tokens_per_s: number;
  single_step_ms: number;
  /** The swarm's weights saved as HF-layout safetensors, read back and loaded into the single-process engine. */
  safetensors_bytes: number;
  safetensors_roundtrip_bitwise: boolean;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** GPT-2 ids of the corpus's first 200k characters (~60k tokens: plenty for one step, seconds to encode). */
function gpt2Tokens(): Uint32Array {
  return Gpt2Tokenizer.full().encode(loadCorpus().slice(0, 200_000));
}

/** Every parameter of the split model from its peers (the tied wte from the first stage; the last holds the same bits). */
async function swarmParams(peers: SwarmPeer[]): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const byStage = [...peers].sort((a, b) => (a.runtime?.stageIndex ?? 0) - (b.runtime?.stageIndex ?? 0));
  for (const p of byStage) {
    const got = await p.runtime?.stage.params.read('params');
    if (!got) throw new Error(`${p.peerId} holds no stage`);
    for (const [name, v] of got) {
      const have = out.get(name);
      if (have && Buffer.compare(Buffer.from(have.buffer, have.byteOffset, have.byteLength), Buffer.from(v.buffer, v.byteOffset, v.byteLength)) !== 0)
        throw new Error(`${name} differs between the stages that hold it`);
      if (!have) out.set(name, v);
    }
  }
  return out;
}

function allocated(p: SwarmPeer): number {
  if (!(p.backend instanceof LocalComputeBackend)) throw new Error(`${p.peerId}: not an in-process peer`);
  return p.backend.rt.stats.bytesAllocated;
}

export async function runGpt2Split(opts: BigSplitOptions = {}): Promise<BigSplitResult> {
  const log = opts.log ?? (() => undefined);
  const nPeers = opts.peers ?? 4;
  const B = opts.B ?? 4;
  const T = opts.T ?? 256;
  const tokens = gpt2Tokens();
  const schedule = { lr: 6e-4, minLr: 6e-5, warmup: 1, decaySteps: 10 };
  const run: RunConfig = {
    runId: 'gpt2-split',
    model: GPT2_SMALL,
    // A placeholder: the coordinator plans the split from the peers' budgets.
    stages: [{ layerStart: 0, layerEnd: GPT2_SMALL.n_layer }],
    B,
    T,
    M: 1,
    steps: 1,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: schedule.lr },
    seed: 5,
  };
  const probe = await nodeRuntime({ quiet: true });
  const maxBindingBytes = probe.maxBindingBytes;
  probe.destroy();
  const modelPlanned = stageMemory(GPT2_SMALL, { layerStart: 0, layerEnd: GPT2_SMALL.n_layer }, { B, T }, { maxBindingBytes }).processTotal;
  const budget = Math.floor(modelPlanned / 3) - 1;
  log(`GPT-2 small at B=${B} T=${T}: ${mib(modelPlanned)} to train in one place; ${nPeers} peers of ${mib(budget)} each`);

  // The swarm: its coordinator waits for the peers' budgets and plans the split (planStages).
  const long = 30 * 60_000; // one microbatch of this model takes a minute here: no deadline may fire for slowness
  const swarm = await startSwarm(run, 'gpt2-split', {
    minPeers: nPeers,
    planStages: true,
    stepTimeoutMs: long,
    readyTimeoutMs: long,
    mbDeadlineMinMs: long,
    pingTimeoutMs: 120_000,
  });
  type Planned = Extract<CoordinatorEvents['plan'], { ok: true }>;
  const made: { plan?: Planned } = {};
  swarm.coordinator.events.on('plan', (p) => {
    if (p.ok) made.plan = p;
    else log(`plan: ${p.reason}`);
  });
  let swarmState: { params: Map<string, Float32Array>; loss: number; ms: number; allocated: Map<string, number>; plan: Planned };
  try {
    const t0 = performance.now();
    for (let i = 0; i < nPeers; i++)
      await swarm.addPeer(`p${i}`, 1000, {
        tokens: () => tokens,
        memoryBytes: budget,
        reduceTimeoutMs: long,
        linkTimeoutMs: 120_000,
        // Four devices in one process: their pollers wait at low priority (the single process's Trainer does too).
        runtime: () => nodeRuntime({ quiet: true, yieldCpu: true }),
      });
    const reports = await swarm.coordinator.finished();
    log(`swarm: ${((performance.now() - t0) / 1000).toFixed(0)} s from the first join to the end of the step`);
    const plan = made.plan;
    if (!plan) throw new Error('the coordinator made no plan');
    const params = await swarmParams(swarm.peers);
    const bytes = new Map(swarm.peers.map((p) => [p.peerId, allocated(p)]));
    swarmState = { params, loss: reports[0].loss, ms: reports[0].ms, allocated: bytes, plan };
  } finally {
    await swarm.close();
  }
  const planned = swarmState.plan;

  // The single-process engine on the same init and batch.
  const rt = await nodeRuntime({ quiet: true });
  try {
    const tr = await Trainer.create(rt, runEngineOptions(rt, run));
    const t1 = performance.now();
    const single = await tr.step(0, [sampleBatch(tokens, { seed: run.seed, step: 0, micro: 0, B, T })]);
    const singleMs = performance.now() - t1;
    const modelBytes = rt.stats.bytesAllocated;
    const ref = await tr.exportParams();
    const cmp = diffParams(swarmState.params, ref);
    log(
      `parity: worst ${cmp.worstRel.name} ${cmp.worstRel.rel.toExponential(2)} of its max |w|; loss swarm ${swarmState.loss} single ${single.loss}`,
    );

    // Save the swarm's weights as HF-layout safetensors, read them back, load them into the single engine's GPU.
    const bytes = encodeCheckpoint({ config: GPT2_SMALL, params: swarmState.params, tokenizer: Gpt2Tokenizer.full().toJSON() });
    const back = decodeCheckpoint(bytes);
    tr.params.load(back.params);
    const onGpu = await tr.params.read('params');
    const bitwise = [...swarmState.params].every(([name, v]) => {
      const w = onGpu.get(name);
      return (
        w !== undefined && Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.byteLength), Buffer.from(w.buffer, w.byteOffset, w.byteLength)) === 0
      );
    });

    let moved = 0;
    for (const [name, v] of initParams(GPT2_SMALL, modelParamSpecs(GPT2_SMALL, null), run.seed)) {
      const w = swarmState.params.get(name);
      if (!w) throw new Error(`the swarm holds no ${name}`);
      for (let i = 0; i < v.length; i++) moved = Math.max(moved, Math.abs(w[i] - v[i]));
    }
    const stages = planned.stages.map((r, s) => ({
      layers: [r.layerStart, r.layerEnd] as [number, number],
      peer: planned.peers[s],
      planned_bytes: planned.bytes[s],
      allocated_bytes: swarmState.allocated.get(planned.peers[s]) ?? Number.NaN,
    }));
    const tokensPerStep = B * T * run.M;
    return {
      peers: nPeers,
      params: modelParamSpecs(GPT2_SMALL, null).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0),
      B,
      T,
      model_train_bytes: modelBytes,
      model_planned_bytes: modelPlanned,
      budget_bytes: budget,
      max_peer_train_bytes: Math.max(...swarmState.allocated.values()),
      update_max_abs: moved,
      stages,
      parity_max_rel: cmp.worstRel.rel,
      parity_max_score: cmp.worst.score,
      parity_worst: cmp.worstRel.name,
      loss_swarm: swarmState.loss,
      loss_single: single.loss,
      tokens_per_s: tokensPerStep / (swarmState.ms / 1000),
      step_ms: swarmState.ms,
      single_tokens_per_s: tokensPerStep / (singleMs / 1000),
      single_step_ms: singleMs,
      safetensors_bytes: bytes.byteLength,
      safetensors_roundtrip_bitwise: bitwise && back.params.size === swarmState.params.size,
    };
  } finally {
    rt.destroy();
  }
}

/** compareToReference's metrics over two parameter maps. */
function diffParams(got: Map<string, Float32Array>, ref: Map<string, Float32Array>): { worst: Diff; worstRel: Diff } {
  if (got.size !== ref.size) throw new Error(`the swarm holds ${got.size} tensors, the single engine ${ref.size}`);
  return worstDiffs(
    [...got].map(([name, v]) => {
      const e = ref.get(name);
      if (!e || e.length !== v.length) throw new Error(`${name}: missing or mis-sized in the single engine`);
      return tensorDiff(name, v, e);
    }),
  );
}
