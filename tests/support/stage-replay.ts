// One stage's validator replay on a Runtime (Node or a page): init from the seed, zero the gradient, then per
// microbatch forward + backward in order (the last stage: forward + loss + backward at once), as
// src/swarm/validator.ts replays a worker. Plain arrays in and out, so a page can hand them to the test driver.
import type { Runtime } from '../../src/gpu/runtime';
import { LocalStageCompute, type StageSpec } from '../../src/model/stage-compute';

export interface ReplayInput {
  spec: StageSpec;
  /** Per microbatch: tokens (first stage), targets (last stage), the output gradient (a non-last stage), as arrays. */
  micro: { tokens: number[]; targets?: number[]; gradOut?: number[] }[];
  lossScale: number;
}

export interface ReplayOutput {
  losses: number[];
  /** Output payloads (activations of a non-last stage) as f32 values. */
  outputs: number[][];
  grads: number[];
}

export async function replayStage(rt: Runtime, input: ReplayInput): Promise<ReplayOutput> {
  const c = new LocalStageCompute(rt, input.spec);
  try {
    await c.init(input.spec.seed);
    await c.zeroGrads();
    const losses: number[] = [];
    const outputs: number[][] = [];
    for (const [mb, m] of input.micro.entries()) {
      const key = { step: 0, mb };
      const tokens = { tokens: Uint32Array.from(m.tokens) };
      if (c.layout.last) {
        const r = await c.forwardBackward(0, tokens, Uint32Array.from(m.targets ?? []), input.lossScale, key);
        losses.push(r.loss);
        continue;
      }
      const act = await c.forward(0, tokens, key);
      outputs.push([...new Float32Array(act.buffer, act.byteOffset, act.byteLength / 4)]);
      await c.backward(0, new Uint8Array(Float32Array.from(m.gradOut ?? []).buffer), key);
    }
    return { losses, outputs, grads: [...(await c.readFlat('grads'))] };
  } finally {
    await c.dispose();
  }
}
