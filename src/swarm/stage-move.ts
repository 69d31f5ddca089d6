// Live rebalancing, the peer's side (docs/resilience.md): a swarm-assign naming another stage of the same run drops
// the stage this peer holds before it builds the new one (its state then comes from a live replica of the new stage
// at the next membership). Dropping: no more work is taken (close), the GPU work already queued settles, then the
// stage's GPU buffers are freed (StageCompute.dispose: in this process, or in the tab's stage worker).
import type { StageRuntime } from './stage-runtime';

export async function teardownStage(sr: StageRuntime): Promise<void> {
  sr.close();
  await sr.idle();
  await sr.compute.dispose();
}
