// stageMemory (src/model/stage-memory.ts) against what a real Stage allocates on the adapter: equal to the byte, for
// every role, awkward sizes, several in-flight slots and bottlenecks at the start, end and inside a stage. A model
// partitioned by this estimate must fit the budgets it was planned for.
import { describe, expect, it } from 'vitest';
import type { BottleneckConfig } from '../../src/model/bottleneck-config';
import type { GPTConfig } from '../../src/model/config';
import { Stage } from '../../src/model/stage';
import { headVocabChunks } from '../../src/model/lm-head';
import { stageMemory, tensorBytes } from '../../src/model/stage-memory';
import type { StageRange } from '../../src/model/stage-role';
import { gpuRuntime, withBindingLimit } from '../support/gpu';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import { Trainer } from '../../src/model/trainer';
import { sampleBatch } from '../../src/model/data';

interface Case {
  config: GPTConfig;
  range: StageRange;
  B: number;
  T: number;
  slots: number;
  bottleneck?: BottleneckConfig;
}

const cfg = (n_layer: number, n_embd: number, n_head: number, vocab_size: number, block_size: number): GPTConfig => ({
  n_layer,
  n_embd,
  n_head,
  vocab_size,
  block_size,
});

const CASES: Case[] = [
  { config: cfg(3, 24, 3, 67, 19), range: { layerStart: 0, layerEnd: 3 }, B: 3, T: 17, slots: 1 },
  { config: cfg(4, 40, 5, 101, 32), range: { layerStart: 0, layerEnd: 2 }, B: 2, T: 31, slots: 3 },
  { config: cfg(4, 40, 5, 101, 32), range: { layerStart: 1, layerEnd: 3 }, B: 5, T: 7, slots: 2 },
  { config: cfg(4, 40, 5, 101, 32), range: { layerStart: 2, layerEnd: 4 }, B: 1, T: 32, slots: 4 },
  {
    config: cfg(5, 32, 4, 53, 16),
    range: { layerStart: 1, layerEnd: 4 },
    B: 2,
    T: 9,
    slots: 2,
    bottleneck: { after: [1, 2, 4], width: 6, passthrough: false },
  },
  {
    config: cfg(5, 32, 4, 53, 16),
    range: { layerStart: 0, layerEnd: 1 },
    B: 2,
    T: 9,
    slots: 1,
    bottleneck: { after: [1], width: 6, passthrough: true },
  },
  {
    config: cfg(5, 32, 4, 53, 16),
    range: { layerStart: 3, layerEnd: 5 },
    B: 3,
    T: 16,
    slots: 3,
    bottleneck: { after: [3], width: 5, passthrough: false },
  },
];

describe('stageMemory', () => {
  it.each(CASES.map((c, i) => [i, c] as const))('case %i: equals the bytes a real Stage allocates', async (_, c) => {
    const rt = await gpuRuntime();
    {
      const before = rt.stats.bytesAllocated;
      const stage = new Stage(rt, c.config, c.range, { B: c.B, T: c.T }, { slots: c.slots, bottleneck: c.bottleneck ?? null });
      await rt.flush();
      const allocated = rt.stats.bytesAllocated - before;
      const est = stageMemory(c.config, c.range, { B: c.B, T: c.T }, { slots: c.slots, bottleneck: c.bottleneck ?? null, align: rt.viewAlignment });
      expect(stage.slotCount).toBe(c.slots);
      expect(est.total).toBe(allocated);
      expect(est.store + est.activations + est.scratch).toBe(est.total);
      // More slots cost exactly their activations.
      const one = stageMemory(c.config, c.range, { B: c.B, T: c.T }, { slots: 1, bottleneck: c.bottleneck ?? null, align: rt.viewAlignment });
      expect(est.activations).toBe(c.slots * one.activations);
    }
  });

  // A binding limit under the head's wte [V, C] makes the Stage's LmHead vocabulary-chunked (no [N, V] tensors).
  it.each([
    [CASES[0], 4000],
    [CASES[3], 8000],
  ] as const)('a head over one binding (limit %#): the chunked head, equal to what a real Stage allocates', async (c, limit) => {
    const rt = await gpuRuntime();
    const opts = { slots: c.slots, bottleneck: c.bottleneck ?? null, align: rt.viewAlignment };
    const { allocated, chunks } = await withBindingLimit(rt, limit, async () => {
      const before = rt.stats.bytesAllocated;
      const stage = new Stage(rt, c.config, c.range, { B: c.B, T: c.T }, opts);
      await rt.flush();
      const head = stage.parts.head;
      return { allocated: rt.stats.bytesAllocated - before, chunks: head?.vocabChunks?.length ?? 0 };
    });
    expect(chunks).toBeGreaterThanOrEqual(3);
    const est = stageMemory(c.config, c.range, { B: c.B, T: c.T }, { ...opts, maxBindingBytes: limit });
    expect(est.total).toBe(allocated);
    const whole = stageMemory(c.config, c.range, { B: c.B, T: c.T }, opts);
    // Saved: per slot logits + probs [N, V] less the stats [N, 3]; shared dlogits [N, V] less the chunk [N, rows].
    const [N, C, V] = [c.B * c.T, c.config.n_embd, c.config.vocab_size];
    const rows = headVocabChunks({ N, C, V }, { maxBindingBytes: limit, viewAlignment: rt.viewAlignment })?.[0].rows ?? V;
    const tb = tensorBytes;
    expect(whole.total - est.total).toBe(c.slots * (2 * tb([N, V]) - tb([N, 3])) + tb([N, V]) - tb([N, rows]));
    // At the adapter's own limit the estimate is the whole-vocabulary one (these small tables fit).
    expect(stageMemory(c.config, c.range, { B: c.B, T: c.T }, { ...opts, maxBindingBytes: rt.maxBindingBytes }).total).toBe(whole.total);
  });

  it('GPT-2 small: the whole model trains in about 2 GB at B=1, T=1024; wte is its largest tensor', () => {
    const gpt2 = cfg(12, 768, 12, 50257, 1024);
    const m = stageMemory(gpt2, { layerStart: 0, layerEnd: 12 }, { B: 1, T: 1024 });
    // 124.4 M parameters (tied head) x 4 copies, plus activations.
    expect(m.store).toBeGreaterThan(4 * 4 * 124.4e6);
    expect(m.store).toBeLessThan(4 * 4 * 124.6e6);
    expect(m.largestTensor).toBe(Math.max(4 * 1024 * 50257, m.store / 4));
    // Bound whole: the [N, V] logits (the whole-vocabulary head); on 128 MiB bindings the head is chunked and the
    // largest bound tensor is its [N, rows] logits chunk.
    expect(m.largestBinding).toBe(4 * 1024 * 50257);
    const limit = 128 * 2 ** 20;
    const chunked = stageMemory(gpt2, { layerStart: 0, layerEnd: 12 }, { B: 1, T: 1024 }, { maxBindingBytes: limit });
    const rows = headVocabChunks({ N: 1024, C: 768, V: 50257 }, { maxBindingBytes: limit, viewAlignment: 64 })?.[0].rows ?? 0;
    expect(rows).toBeGreaterThan(0);
    expect(chunked.largestBinding).toBe(4 * 1024 * rows);
    expect(chunked.largestBinding).toBeLessThanOrEqual(limit);
  });

  it('processTotal is what a whole-model Trainer allocates through a train step (a fresh runtime: its layernorm scratch)', async () => {
    const config = cfg(2, 24, 3, 67, 16);
    const rt = await nodeRuntime({ quiet: true });
    try {
      const tr = await Trainer.create(rt, {
        config,
        B: 3,
        T: 13,
        schedule: { lr: 1e-3, minLr: 1e-4, warmup: 1, decaySteps: 4 },
        seed: 3,
        tune: false,
      });
      const tokens = Uint32Array.from({ length: 500 }, (_, i) => (i * 31) % 67);
      await tr.step(
        0,
        [0, 1].map((micro) => sampleBatch(tokens, { seed: 3, step: 0, micro, B: 3, T: 13 })),
      );
      const m = stageMemory(config, { layerStart: 0, layerEnd: 2 }, { B: 3, T: 13 }, { maxBindingBytes: rt.maxBindingBytes });
      expect(m.opScratch).toBeGreaterThan(0);
      expect(m.wire).toBe(0); // the whole model has no boundary
      // The Trainer's own: 256 step losses.
      expect(rt.stats.bytesAllocated).toBe(m.processTotal + 4 * 256);
      expect(rt.stats.uniformBytes).toBeGreaterThan(0); // kernel parameters, counted apart
    } finally {
      rt.destroy();
    }
  });
});
