// Pause keeps the tab's stage worker (its WebGPU device and compiled pipelines) while the SwarmPeer that used it is
// closed: the peer gets this wrapper, whose destroy() frees only the stages made through it and leaves the worker
// up for the next join (resume). Leave destroys the real backend.
import type { ComputeBackend, StageCompute, StageSpec } from '../model/stage-compute';

export function keptBackend(inner: ComputeBackend): ComputeBackend {
  const stages = new Set<StageCompute>();
  return {
    get adapter() {
      return inner.adapter;
    },
    benchmark: (reps) => inner.benchmark(reps),
    async createStage(spec: StageSpec) {
      const s = await inner.createStage(spec);
      stages.add(s);
      return s;
    },
    async destroy() {
      const all = [...stages];
      stages.clear();
      await Promise.all(all.map((s) => s.dispose().catch(() => undefined)));
    },
  };
}
