// `npm run bench`: every benchmark in one run on one adapter, printed as tables and written to
// bench/results/latest.json. Ratios compare ours against an anchor measured in the same run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { matmulChoices } from '../src/gpu/autotune';
import { describeAdapter } from '../src/gpu/device';
import { nodeRuntime } from '../src/gpu/node-runtime';
import { benchAttention } from './attention';
import { benchMatmul } from './matmul';
import { benchTrainStep } from './train-step';
import type { BigSplitResult } from '../tests/big/gpt2-split';

const only = process.argv.slice(2);
const want = (name: string) => only.length === 0 || only.includes(name);

const rt = await nodeRuntime({ timestamps: only.includes('profile') });
const results: Record<string, unknown> = { date: new Date().toISOString(), adapter: rt.handle.report, describe: describeAdapter(rt.handle.report) };
console.log(`adapter: ${describeAdapter(rt.handle.report)}\n`);

if (want('matmul')) results.matmul = await benchMatmul(rt);
if (want('attention')) results.attention = await benchAttention(rt);
if (want('train')) {
  const r = await benchTrainStep(rt);
  results.trainStep = r;
  console.log('\ntrain step (reference config n_layer 4, n_head 4, n_embd 128, block 64, batch 12)');
  const row = (who: string, ms: number, tps: number) => ({ who, 'median step ms': ms.toFixed(1), 'tokens/s': tps.toFixed(0) });
  const rows = [row('tabswarm', r.medianStepMs, r.tokensPerS)];
  if (r.torch) rows.push(row(`PyTorch ${r.torch.version} CPU (${r.torch.threads} threads)`, r.torch.medianStepMs, r.torch.tokensPerS));
  console.table(rows);
  console.log(
    r.ratio === null
      ? `PyTorch column missing: ${r.torchMissing ?? 'not run'}`
      : `ratio tabswarm / PyTorch: ${r.ratio.toFixed(2)}x (median of ${r.rounds} alternating rounds)`,
  );
  results.tuning = matmulChoices(rt);
}
if (only.includes('profile')) {
  // Not part of a plain `npm run bench`: per-kernel GPU time of a train step (`npm run bench -- profile`).
  const { profileTrainStep } = await import('./profile-step');
  const p = await profileTrainStep(rt);
  results.profile = p;
  console.log(
    `\ntrain step profile: ${p.gpuMsPerStep.toFixed(1)} ms GPU, ${p.wallMsPerStep.toFixed(1)} ms wall, ${p.launchesPerStep} launches per step`,
  );
  console.table(
    p.kernels.map((k) => ({
      kernel: k.name,
      launches: k.launches,
      'ms/step': k.ms.toFixed(2),
      share: `${((100 * k.ms) / p.gpuMsPerStep).toFixed(1)} %`,
    })),
  );
}
if (want('swarm')) {
  const { benchSwarm } = await import('./swarm');
  results.swarm = await benchSwarm();
}
if (only.includes('compress')) {
  // Not part of a plain `npm run bench` (~25 min): `npm run bench -- compress`.
  const { benchCompress } = await import('./compress');
  results.compress = await benchCompress();
}
if (only.includes('byzantine')) {
  // Not part of a plain `npm run bench` (16 peers in one process): `npm run bench -- byzantine`.
  const { benchByzantine } = await import('./byzantine');
  results.byzantine = await benchByzantine();
}
if (only.includes('resilience')) {
  // Not part of a plain `npm run bench` (child processes, ~15 min with 3 reps): `npm run bench -- resilience`.
  const { benchResilience } = await import('./resilience');
  results.resilience = await benchResilience();
}
let big: BigSplitResult | undefined;
if (only.includes('big')) {
  // Not part of a plain `npm run bench` (GPT-2 small across 4 peers, minutes): `npm run bench -- big`.
  const { benchBig } = await import('./big');
  big = await benchBig();
  results.big = big;
}
if (want('net')) {
  const { benchNet } = await import('./net');
  results.net = await benchNet();
}
const dir = join(import.meta.dirname ?? '.', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'latest.json'), JSON.stringify(results, null, 2));
console.log(`\nwrote ${join(dir, 'latest.json')}`);
rt.destroy();
// The big split's figures as the last line (one JSON object), for scripts that read them.
if (big) console.log(JSON.stringify(big));
process.exit(0);
