// The whole model on the GPU against the independent float64 reference (tests/reference/gpt64.ts, itself checked
// against finite differences): loss, logits and the gradient of every parameter; a split into two pipeline stages
// gives the same gradients as one stage; training is bitwise deterministic; and the loss falls when training.
import { describe, expect, it } from 'vitest';
import { gpt2ParamSpecs, type GPTConfig } from '../../src/model/config';
import { Dataset, sampleBatch } from '../../src/model/data';
import { loadCorpus } from '../../src/model/corpus-node';
import { Stage } from '../../src/model/stage';
import { CharTokenizer } from '../../src/model/tokenizer';
import { Trainer } from '../../src/model/trainer';
import { gpt64Backward, gpt64Forward } from '../reference/gpt64';
import { expectClose, freshSeed, gpuRuntime, randInt, rng } from '../support/gpu';
import { maxAbs, randomParams, to64 } from '../support/params';

const tiny: GPTConfig = { n_layer: 2, n_head: 2, n_embd: 12, vocab_size: 11, block_size: 9 };

describe('GPT on the GPU vs the float64 reference', () => {
  it('loss, logits and every parameter gradient match', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const B = 3;
    const T = 7; // < block_size on purpose
    const params = randomParams(gpt2ParamSpecs(tiny), seed);
    const inputs = randInt(B * T, tiny.vocab_size, rand);
    const targets = randInt(B * T, tiny.vocab_size, rand);
    const st = new Stage(rt, tiny, { layerStart: 0, layerEnd: tiny.n_layer }, { B, T });
    st.params.load(params);
    st.zeroGrads();
    st.setTokens(0, inputs);
    st.setTargets(0, targets);
    const lossT = st.forward(0);
    st.backward(0, { lossScale: 1 / (B * T) });
    const loss = (await rt.read(lossT))[0];
    const logits = await rt.read(st.logits(0));
    const grads = await st.params.read('grads');

    const ref = gpt64Forward(tiny, to64(params), inputs, targets, B, T);
    const refGrads = gpt64Backward(tiny, to64(params), inputs, targets, B, T);
    expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-5 * Math.max(1, ref.loss));
    expectClose(`logits seed=${seed}`, logits, ref.acts.logits, 2e-5 * maxAbs(ref.acts.logits), 1e-4);
    for (const spec of gpt2ParamSpecs(tiny)) {
      const e = refGrads.grads.get(spec.name)!;
      const a = grads.get(spec.name)!;
      expectClose(`d${spec.name} seed=${seed}`, a, e, 1e-4 * Math.max(maxAbs(e), 1e-6), 2e-3);
    }
  });

  it('two pipeline stages give the same loss and gradients as one', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const B = 2;
    const T = 9;
    const params = randomParams(gpt2ParamSpecs(tiny), seed);
    const inputs = randInt(B * T, tiny.vocab_size, rand);
    const targets = randInt(B * T, tiny.vocab_size, rand);
    const full = new Stage(rt, tiny, { layerStart: 0, layerEnd: 2 }, { B, T });
    const s0 = new Stage(rt, tiny, { layerStart: 0, layerEnd: 1 }, { B, T });
    const s1 = new Stage(rt, tiny, { layerStart: 1, layerEnd: 2 }, { B, T });
    for (const s of [full, s0, s1]) {
      s.params.load(new Map([...params].filter(([k]) => s.params.has(k))));
      s.zeroGrads();
    }
    full.setTokens(0, inputs);
    full.setTargets(0, targets);
    const lossFull = full.forward(0);
    full.backward(0, { lossScale: 1 / (B * T) });

    s0.setTokens(0, inputs);
    const acts = await rt.read(s0.forward(0)); // crosses the boundary through host memory, as over the wire
    s1.setInput(0, acts);
    s1.setTargets(0, targets);
    const lossSplit = s1.forward(0);
    const gIn = await rt.read(s1.backward(0, { lossScale: 1 / (B * T) })!);
    expect(s0.backward(0, { gradOut: gIn })).toBeNull();

    expect((await rt.read(lossSplit))[0]).toBe((await rt.read(lossFull))[0]);
    const gFull = await full.params.read('grads');
    const g0 = await s0.params.read('grads');
    const g1 = await s1.params.read('grads');
    for (const [name, g] of gFull) {
      // wte is tied: the first stage holds the embedding's share, the last the lm_head's.
      const split = name === 'transformer.wte.weight' ? g0.get(name)!.map((x, i) => x + g1.get(name)![i]) : (g0.get(name) ?? g1.get(name))!;
      expectClose(`split d${name} seed=${seed}`, split, g, 1e-6 * Math.max(maxAbs(g), 1e-6), 1e-5);
    }
  });

  it('rejects bad token ids and wrong activation shapes with a clear error', async () => {
    const rt = await gpuRuntime();
    const st = new Stage(rt, tiny, { layerStart: 0, layerEnd: 1 }, { B: 1, T: 4 });
    expect(() => st.setTokens(0, Uint32Array.from([1, 2, 11, 0]))).toThrow(/tokens\[2\] = 11 is not a token id/);
    expect(() => st.setTokens(0, Uint32Array.from([1, 2]))).toThrow(/2 ids, expected B\*T = 4/);
    const s1 = new Stage(rt, tiny, { layerStart: 1, layerEnd: 2 }, { B: 1, T: 4 });
    expect(() => s1.setInput(0, new Float32Array(5))).toThrow(/5 values, expected 48/);
    expect(() => new Stage(rt, tiny, { layerStart: 1, layerEnd: 1 }, { B: 1, T: 4 })).toThrow(/not a non-empty range/);
    expect(() => new Stage(rt, tiny, { layerStart: 0, layerEnd: 2 }, { B: 1, T: 10 })).toThrow(/block_size/);
  });
});

describe('training', () => {
  const text = loadCorpus();
  const tokenizer = CharTokenizer.fromCorpus(text);
  const data = Dataset.fromText(text, tokenizer, { valFraction: 0.1 });
  const config: GPTConfig = { n_layer: 2, n_head: 2, n_embd: 32, vocab_size: tokenizer.vocabSize, block_size: 32 };
  const schedule = { lr: 3e-3, minLr: 3e-4, warmup: 5, decaySteps: 60 };
  const batch = (it: number, micro = 0) => sampleBatch(data.train, { seed: 7, step: it, micro, B: 8, T: 32 });

  it('is bitwise deterministic: same init and batches give identical weights', async () => {
    const rt = await gpuRuntime();
    const runs: Float32Array[] = [];
    for (let r = 0; r < 2; r++) {
      const tr = await Trainer.create(rt, { config, B: 8, T: 32, seed: 3, schedule, tune: false });
      for (let it = 0; it < 3; it++) await tr.step(it, [batch(it, 0), batch(it, 1)]);
      runs.push(await tr.stage.params.readFlat('params'));
      runs.push(await tr.stage.params.readFlat('m'));
    }
    expect(Buffer.from(runs[0].buffer).equals(Buffer.from(runs[2].buffer))).toBe(true);
    expect(Buffer.from(runs[1].buffer).equals(Buffer.from(runs[3].buffer))).toBe(true);
  });

  it('the loss falls by at least 1.0 nat in 60 steps', async () => {
    const rt = await gpuRuntime();
    const tr = await Trainer.create(rt, { config, B: 8, T: 32, seed: 1, schedule, tune: false });
    const losses: number[] = [];
    for (let it = 0; it < 60; it++) losses.push((await tr.step(it, [batch(it)])).loss);
    const first = losses.slice(0, 3).reduce((a, b) => a + b) / 3;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(first).toBeGreaterThan(Math.log(tokenizer.vocabSize) - 0.3); // starts near uniform
    expect(first - last).toBeGreaterThan(1.0);
  });
});
