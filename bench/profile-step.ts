// `npm run bench -- profile`: where a train step of the reference config spends its GPU time, per kernel, from
// timestamp queries (src/gpu/profiler.ts). Each dispatch runs in its own pass while profiling, so the total is a
// little above a plain step's; the shares are what to read.
import { KernelProfiler, type KernelTime } from '../src/gpu/profiler';
import type { Runtime } from '../src/gpu/runtime';
import { sampleBatch } from '../src/model/data';
import { referenceTrainer } from './train-step';

export interface StepProfile {
  steps: number;
  /** Per kernel name: launches and milliseconds per step. */
  kernels: KernelTime[];
  gpuMsPerStep: number;
  wallMsPerStep: number;
  launchesPerStep: number;
}

export async function profileTrainStep(rt: Runtime, opts: { steps?: number; B?: number; T?: number } = {}): Promise<StepProfile> {
  const { data, B, T, trainer } = await referenceTrainer(rt, opts);
  const profiler = new KernelProfiler(rt.device);
  rt.profiler = profiler;
  const steps = opts.steps ?? 10;
  let wall = 0;
  let launches = 0;
  for (let it = 0; it < steps + 2; it++) {
    const batch = sampleBatch(data.train, { seed: 1, step: it, micro: 0, B, T });
    const l0 = rt.stats.launches;
    const t0 = performance.now();
    await trainer.step(it, [batch]);
    if (it < 2) {
      await profiler.collect();
      profiler.reset();
      continue;
    }
    wall += performance.now() - t0;
    launches += rt.stats.launches - l0;
  }
  const totals = await profiler.collect();
  rt.profiler = null;
  profiler.destroy();
  const kernels = totals.map((k) => ({ name: k.name, launches: k.launches / steps, ms: k.ms / steps }));
  return { steps, kernels, gpuMsPerStep: kernels.reduce((a, k) => a + k.ms, 0), wallMsPerStep: wall / steps, launchesPerStep: launches / steps };
}
