// Runs the matmul benchmark alone: node bin/run-ts.mjs bench/matmul-main.ts [--reps N] [--json out.json] [--quick]
// [--no-subgroups]. By default the device also gets the 'subgroups' feature when the adapter has it (the engine's
// runtime does not request it yet), so the subgroup variant is measured too.
import { writeFileSync } from 'node:fs';
import { acquireDevice } from '../src/gpu/device';
import { nodeGpu } from '../src/gpu/node-gpu';
import { nodeRuntime } from '../src/gpu/node-runtime';
import { Runtime } from '../src/gpu/runtime';
import { benchMatmul, modelShapes } from './matmul';

async function runtimeWithSubgroups(): Promise<Runtime> {
  const { gpu } = await nodeGpu();
  const base = await acquireDevice(gpu);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter?.features.has('subgroups' as GPUFeatureName)) return new Runtime(base);
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: ['subgroups' as GPUFeatureName],
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    },
  });
  base.device.destroy();
  return new Runtime({ ...base, adapter, device });
}

const argv = process.argv.slice(2);
const arg = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rt = process.argv.includes('--no-subgroups') ? await nodeRuntime() : await runtimeWithSubgroups();
const quick = argv.includes('--quick');
const result = await benchMatmul(rt, {
  reps: Number(arg('--reps') ?? 5),
  shapes: quick ? modelShapes().filter((s) => s.label.startsWith('square 512') || s.label === 'mlp.c_fc fwd') : undefined,
});
const json = arg('--json');
if (json) writeFileSync(json, JSON.stringify(result, null, 2));
rt.destroy();
process.exit(0);
