// GPT-2 small split across 4 Node peers, each under a third of the whole model's training memory, against the
// single-process engine (tests/big/gpt2-split.ts). Minutes on a 2-core CPU adapter: scripts/test.sh runs tests/big
// after the other suites, alone, so it neither starves nor is starved by them.
import { describe, expect, it } from 'vitest';
import { runGpt2Split } from './gpt2-split';

describe('GPT-2 small larger than any one peer', () => {
  it('4 peers under a third each: planned from their budgets, one step matches the single process, HF safetensors round trip', async () => {
    const r = await runGpt2Split({ log: (s) => console.log(s) });
    console.log(JSON.stringify({ ...r, stages: undefined }));
    for (const s of r.stages)
      console.log(`stage [${s.layers.join(', ')}) on ${s.peer}: planned ${s.planned_bytes} B, allocated ${s.allocated_bytes} B`);
    expect(r.stages.length).toBe(4);
    expect(r.stages[0].layers[0]).toBe(0);
    expect(r.stages[3].layers[1]).toBe(12);
    // The memory model is the allocation, to the byte, on both sides (the Trainer also keeps 256 step losses).
    expect(r.model_train_bytes).toBe(r.model_planned_bytes + 4 * 256);
    for (const s of r.stages) expect(s.allocated_bytes).toBe(s.planned_bytes);
    expect(r.max_peer_train_bytes).toBeLessThanOrEqual(r.budget_bytes);
    expect(3 * r.max_peer_train_bytes).toBeLessThan(r.model_train_bytes);
    // Parity as in the swarm tests: every tensor within 1e-5 of max(1, max |w|); the losses agree.
    expect(r.parity_max_score).toBeLessThan(1e-5);
    expect(r.update_max_abs).toBeGreaterThan(1e-4); // AdamW's first step moves weights by ~lr (3e-4 here)
    expect(Math.abs(r.loss_swarm - r.loss_single)).toBeLessThan(1e-4);
    expect(r.loss_single).toBeGreaterThan(10); // ln(50257) = 10.8 at GPT-2 init: the model is what it claims
    expect(r.safetensors_roundtrip_bitwise).toBe(true);
    expect(r.params).toBe(123_849_984); // GPT-2 small's 124,439,808 less wpe rows 256..1023
    expect(r.safetensors_bytes).toBeGreaterThan(4 * r.params); // f32 data plus the JSON header
  }, 1_800_000);
});
