// Train-step throughput of the single-peer engine at a given config (default: nanoGPT's CPU recipe, n_layer 4,
// n_head 4, n_embd 128, block_size 64, batch 12), side by side with PyTorch's CPU step of the same model
// (bench/torch_train_step.py) in the same run: rounds alternate ours and PyTorch's so both see the same machine;
// each round reports its median step, the result the median over rounds, and the ratio ours / PyTorch.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { median } from '../src/gpu/autotune';
import type { Runtime } from '../src/gpu/runtime';
import type { GPTConfig } from '../src/model/config';
import { loadCorpus } from '../src/model/corpus-node';
import { Dataset, sampleBatch } from '../src/model/data';
import { CharTokenizer } from '../src/model/tokenizer';
import { Trainer } from '../src/model/trainer';

export interface TrainStepResult {
  config: GPTConfig;
  B: number;
  tokensPerStep: number;
  medianStepMs: number;
  tokensPerS: number;
  steps: number;
  rounds: number;
  /** Median step of each round, ours. */
  roundMs: number[];
  /** PyTorch's CPU step of the same model in the same run (null with `torchMissing` saying why). */
  torch: { version: string; threads: number; medianStepMs: number; tokensPerS: number; roundMs: number[] } | null;
  torchMissing?: string;
  /** tokens/s ours / PyTorch's (null without PyTorch). */
  ratio: number | null;
}

interface TorchRound {
  torch: string;
  threads: number;
  medianStepMs: number;
}

/**
 * The Python that has torch: $TABSWARM_PYTHON, else Debian's /usr/bin/python3 (python3-torch installs there, and a
 * python3 earlier on PATH, e.g. pyenv's, would not see it), else python3. A string says why there is none.
 */
function torchPython(): string {
  const tried: string[] = [];
  for (const py of [process.env.TABSWARM_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!py) continue;
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
    if (!r.error && r.status === 0) return py;
    tried.push(py);
  }
  throw new Error(`PyTorch not found (tried ${tried.join(', ')}): apt-get install python3-torch, or set TABSWARM_PYTHON; the bench installs nothing`);
}

/** One PyTorch round of `steps` timed steps. */
function torchRound(py: string, config: GPTConfig, B: number, steps: number): TorchRound {
  const script = join(import.meta.dirname ?? 'bench', 'torch_train_step.py');
  const args = [script, '--n-layer', config.n_layer, '--n-head', config.n_head, '--n-embd', config.n_embd, '--block', config.block_size];
  args.push('--batch', B, '--vocab', config.vocab_size, '--steps', steps);
  const r = spawnSync(py, args.map(String), { encoding: 'utf8', timeout: 600_000 });
  if (r.error || r.status !== 0)
    throw new Error(`PyTorch step failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as TorchRound;
}

/** The reference config's trainer on tinyshakespeare (char tokens), and its data: what the train benches time. */
export async function referenceTrainer(
  rt: Runtime,
  opts: { n_layer?: number; n_head?: number; n_embd?: number; T?: number; B?: number } = {},
): Promise<{ data: Dataset; config: GPTConfig; B: number; T: number; trainer: Trainer }> {
  const text = loadCorpus();
  const tokenizer = CharTokenizer.fromCorpus(text);
  const data = Dataset.fromText(text, tokenizer);
  const T = opts.T ?? 64;
  const B = opts.B ?? 12;
  const config: GPTConfig = {
    n_layer: opts.n_layer ?? 4,
    n_head: opts.n_head ?? 4,
    n_embd: opts.n_embd ?? 128,
    vocab_size: tokenizer.vocabSize,
    block_size: T,
  };
  const trainer = await Trainer.create(rt, { config, B, T, seed: 1, schedule: { lr: 1e-3, minLr: 1e-4, warmup: 10, decaySteps: 1000 } });
  return { data, config, B, T, trainer };
}

export async function benchTrainStep(
  rt: Runtime,
  opts: { n_layer?: number; n_head?: number; n_embd?: number; T?: number; B?: number; steps?: number; rounds?: number; torch?: boolean } = {},
): Promise<TrainStepResult> {
  const { data, config, B, T, trainer } = await referenceTrainer(rt, opts);
  const steps = opts.steps ?? 20;
  const rounds = opts.rounds ?? 3;
  const roundMs: number[] = [];
  const torchMs: number[] = [];
  let torchInfo: TorchRound | null = null;
  let torchMissing: string | undefined;
  let py: string | null = null;
  if (opts.torch ?? true) {
    try {
      py = torchPython();
    } catch (e) {
      torchMissing = e instanceof Error ? e.message : String(e);
    }
  }
  let it = 0;
  for (let round = 0; round < rounds; round++) {
    const times: number[] = [];
    for (let k = 0; k < steps + 3; k++, it++) {
      const batch = sampleBatch(data.train, { seed: 1, step: it, micro: 0, B, T });
      const t0 = performance.now();
      await trainer.step(it, [batch]);
      if (k >= 3) times.push(performance.now() - t0);
    }
    roundMs.push(median(times));
    if (py) {
      torchInfo = torchRound(py, config, B, steps);
      torchMs.push(torchInfo.medianStepMs);
    }
  }
  const med = median(roundMs);
  const tokensPerS = (B * T) / (med / 1000);
  const torch =
    torchInfo && torchMs.length === rounds
      ? {
          version: torchInfo.torch,
          threads: torchInfo.threads,
          medianStepMs: median(torchMs),
          tokensPerS: (B * T) / (median(torchMs) / 1000),
          roundMs: torchMs,
        }
      : null;
  return {
    config,
    B,
    tokensPerStep: B * T,
    medianStepMs: med,
    tokensPerS,
    steps,
    rounds,
    roundMs,
    torch,
    ...(torchMissing ? { torchMissing } : {}),
    ratio: torch ? tokensPerS / torch.tokensPerS : null,
  };
}
