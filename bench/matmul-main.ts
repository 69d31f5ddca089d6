// Runs the matmul benchmark alone: node bin/run-ts.mjs bench/matmul-main.ts [--reps N] [--json out.json] [--quick]
import { writeFileSync } from 'node:fs';
import { nodeRuntime } from '../src/gpu/node-runtime';
import { benchMatmul, modelShapes } from './matmul';

const argv = process.argv.slice(2);
const arg = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rt = await nodeRuntime();
const quick = argv.includes('--quick');
const result = await benchMatmul(rt, {
  reps: Number(arg('--reps') ?? 5),
  shapes: quick ? modelShapes().filter((s) => s.label.startsWith('square 512') || s.label === 'mlp.c_fc fwd') : undefined,
});
const json = arg('--json');
if (json) writeFileSync(json, JSON.stringify(result, null, 2));
rt.destroy();
process.exit(0);
