// Byzantine benchmark (`npm run bench -- byzantine`), BTARD-like: 1 stage x PEERS replicas of which BAD attack
// (src/swarm/adversary.ts; the attacks rotate over scale:-1000, nan, random, signflip, stale), trimmed-mean
// aggregation with trim = BAD (the BAD outermost values of every coordinate dropped at each end), validators on a
// sample of the contributions, 2 strikes evict. Every peer is in this process with its own GPU device, over the real
// signaling server and node-datachannel WebRTC on loopback. Measured: the final loss against the honest run (the
// single-peer engine on the same init and batches), when each adversary was evicted, honest peers struck, wall time.
// TABSWARM_BYZ_PEERS / TABSWARM_BYZ_BAD / TABSWARM_BYZ_STEPS size it (default 16 / 7 / 8).
import type { StepReport } from '../src/coordinator/coordinator';
import { runEngineOptions } from '../src/coordinator/run-model';
import { nodeRuntime } from '../src/gpu/node-runtime';
import { loadCorpus } from '../src/model/corpus-node';
import { Dataset, sampleBatch } from '../src/model/data';
import { DEFAULT_OPTIMIZER } from '../src/model/stage';
import { CharTokenizer } from '../src/model/tokenizer';
import { Trainer } from '../src/model/trainer';
import { parseRunConfig, type RunConfig } from '../src/protocol/run-config';
import { emptyAttackLog, formatAttack, parseAttack } from '../src/swarm/adversary';
import { withNodeSwarm } from './node-swarm';

const ATTACKS = ['scale:-1000', 'nan', 'random', 'signflip', 'stale'].map(parseAttack);

export interface ByzantineBenchResult {
  peers: number;
  byzantine: number;
  steps: number;
  attacks: string[];
  finalLoss: number;
  honestLoss: number;
  /** |final - honest| / honest. */
  relDiff: number;
  /** Adversary id -> the step it was evicted at (null: never). */
  evictedAt: Record<string, number | null>;
  honestStruck: number;
  /** Why honest peers were struck (e.g. a Byzantine validator's false verdict the coordinator could not settle). */
  honestStrikeReasons: string[];
  strikes: number;
  wallS: number;
}

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number.parseInt(v, 10);
}

export async function benchByzantine(): Promise<ByzantineBenchResult> {
  const peers = envInt('TABSWARM_BYZ_PEERS', 16);
  const bad = envInt('TABSWARM_BYZ_BAD', 7);
  const steps = envInt('TABSWARM_BYZ_STEPS', 8);
  const text = loadCorpus();
  const data = Dataset.fromText(text, CharTokenizer.fromCorpus(text), { valFraction: 0.1 });
  const schedule = { lr: 1e-2, minLr: 1e-3, warmup: 1, decaySteps: steps };
  const run: RunConfig = parseRunConfig({
    runId: `bench-byzantine-${peers}-${bad}`,
    model: { n_layer: 1, n_head: 2, n_embd: 32, vocab_size: data.tokenizer!.vocabSize, block_size: 16 },
    stages: [{ layerStart: 0, layerEnd: 1 }],
    B: 2,
    T: 16,
    M: 2 * peers,
    steps,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: schedule.lr },
    seed: 7,
    trust: { aggregation: 'trimmed-mean', trim: bad, validationRate: 0.5, strikes: 2 },
  });

  // The honest run: the single-peer engine on the same init and batches.
  const rt = await nodeRuntime({ quiet: true });
  const tr = await Trainer.create(rt, runEngineOptions(rt, run));
  const honest: number[] = [];
  for (let s = 0; s < steps; s++) {
    const micro = Array.from({ length: run.M }, (_, k) => sampleBatch(data.train, { seed: run.seed, step: s, micro: k, B: run.B, T: run.T }));
    honest.push((await tr.step(s, micro)).loss);
  }
  rt.destroy();

  const t0 = performance.now();
  const log = emptyAttackLog();
  const badIds: string[] = [];
  const strikes: { peerId: string; reason: string }[] = [];
  const evicted = new Map<string, number>();
  const attackOf = (i: number) => (i >= peers - bad ? ATTACKS[(i - (peers - bad)) % ATTACKS.length] : undefined);
  let joined = 0;
  const reports: StepReport[] = await withNodeSwarm(
    data,
    run,
    async ({ coordinator }) => {
      coordinator.events.on('strike', (e) => strikes.push(e));
      coordinator.events.on('evicted', (e) => evicted.set(e.peerId, e.step));
      return coordinator.finished();
    },
    (p) => {
      if (attackOf(joined++)) badIds.push(p.peerId);
    },
    {
      peers,
      extra: (i) => {
        const attack = attackOf(i);
        return attack ? { attack, attackLog: log } : {};
      },
    },
  );
  const wallS = (performance.now() - t0) / 1000;
  const finalLoss = reports[reports.length - 1].loss;
  const honestLoss = honest[steps - 1];
  const r: ByzantineBenchResult = {
    peers,
    byzantine: bad,
    steps,
    attacks: badIds.map((_, k) => formatAttack(ATTACKS[k % ATTACKS.length])),
    finalLoss,
    honestLoss,
    relDiff: Math.abs(finalLoss - honestLoss) / honestLoss,
    evictedAt: Object.fromEntries(badIds.map((id) => [id, evicted.get(id) ?? null])),
    honestStruck: strikes.filter((s) => !badIds.includes(s.peerId)).length,
    honestStrikeReasons: strikes.filter((s) => !badIds.includes(s.peerId)).map((s) => s.reason),
    strikes: strikes.length,
    wallS,
  };
  console.log(`\nByzantine (BTARD-like): 1 stage x ${peers} replicas, ${bad} Byzantine, ${steps} steps, trimmed mean (trim ${bad}), validation 0.5`);
  console.table([
    {
      'final loss': finalLoss.toFixed(4),
      'honest loss': honestLoss.toFixed(4),
      'diff %': (100 * r.relDiff).toFixed(2),
      'evicted at step': Object.values(r.evictedAt).join(' '),
      'honest struck': r.honestStruck,
      'wall s': wallS.toFixed(1),
    },
  ]);
  if (r.honestStrikeReasons.length > 0) console.log(`honest peers struck: ${r.honestStrikeReasons.join('; ')}`);
  return r;
}
