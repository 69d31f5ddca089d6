// Test page: one swarm stage's compute (LocalStageCompute on this page's WebGPU adapter) replays microbatches as a
// validator does (src/swarm/validator.ts) and hands back what a validator compares: losses, output payloads, the
// gradient. tests/browser/validator-tolerance.test.ts runs the same in Node (lavapipe) and measures the difference.
import { browserRuntime } from '../../../src/gpu/browser-runtime';
import { replayStage, type ReplayInput, type ReplayOutput } from '../../support/stage-replay';

declare global {
  interface Window {
    replayStage: (input: ReplayInput) => Promise<ReplayOutput & { adapter: string }>;
  }
}

window.replayStage = async (input) => {
  const rt = await browserRuntime();
  try {
    return { ...(await replayStage(rt, input)), adapter: rt.handle.report.key };
  } finally {
    rt.destroy();
  }
};
