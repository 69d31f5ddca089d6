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

const only = process.argv.slice(2);
const want = (name: string) => only.length === 0 || only.includes(name);

const rt = await nodeRuntime();
const results: Record<string, unknown> = { date: new Date().toISOString(), adapter: rt.handle.report, describe: describeAdapter(rt.handle.report) };
console.log(`adapter: ${describeAdapter(rt.handle.report)}\n`);

if (want('matmul')) results.matmul = await benchMatmul(rt);
if (want('attention')) results.attention = await benchAttention(rt);
if (want('train')) {
  const r = await benchTrainStep(rt);
  results.trainStep = r;
  console.log('\ntrain step (reference config n_layer 4, n_head 4, n_embd 128, block 64, batch 12)');
  console.table([
    { 'median step ms': r.medianStepMs.toFixed(1), 'tokens/step': r.tokensPerStep, 'tokens/s': r.tokensPerS.toFixed(0), 'target tokens/s': 2000 },
  ]);
  results.tuning = matmulChoices(rt);
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
if (want('net')) {
  const { benchNet } = await import('./net');
  results.net = await benchNet();
}
const dir = join(import.meta.dirname ?? '.', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'latest.json'), JSON.stringify(results, null, 2));
console.log(`\nwrote ${join(dir, 'latest.json')}`);
rt.destroy();
process.exit(0);
