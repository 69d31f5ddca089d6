// The learned bottleneck on the GPU: the whole model with bottlenecks (both variants) against the float64 reference
// (loss, logits, every parameter's gradient, the projections' included); a pipeline split at bottlenecked boundaries
// (first, middle and last stages, each with its own ParamStore, activations crossing through host memory as over
// the wire) gives the single-peer Trainer's gradients at the same boundaries, with the fp32 codec and with int8;
// the trainer with fp32 boundaries and no bottleneck equals today's trainer; wrong shapes are refused.
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../src/compress/codec';
import type { Runtime } from '../../src/gpu/runtime';
import { modelParamSpecs, type BottleneckConfig } from '../../src/model/bottleneck-config';
import { WTE, type GPTConfig } from '../../src/model/config';
import { Dataset, sampleBatch } from '../../src/model/data';
import { loadCorpus } from '../../src/model/corpus-node';
import { initParams } from '../../src/model/init';
import { Stage, stageParamSpecs } from '../../src/model/stage';
import { CharTokenizer } from '../../src/model/tokenizer';
import { Trainer, type BoundaryCodec } from '../../src/model/trainer';
import { gpt64Backward, gpt64Forward } from '../reference/gpt64';
import { expectClose, freshSeed, gpuRuntime, randInt, rng } from '../support/gpu';
import { maxAbs, randomParams, to64 } from '../support/params';

const tiny: GPTConfig = { n_layer: 3, n_head: 2, n_embd: 12, vocab_size: 11, block_size: 9 };

function get<V>(m: Map<string, V>, k: string): V {
  const v = m.get(k);
  if (v === undefined) throw new Error(`missing ${k}`);
  return v;
}

describe('bottleneck on the GPU vs the float64 reference', () => {
  for (const passthrough of [false, true]) {
    it(`passthrough ${passthrough}: loss, logits and every parameter gradient match (boundaries inside one stage)`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const rt = await gpuRuntime();
      const B = 3;
      const T = 7;
      const bn: BottleneckConfig = { width: 5, passthrough, after: [1, 2] };
      const params = randomParams(modelParamSpecs(tiny, bn), seed);
      const inputs = randInt(B * T, tiny.vocab_size, rand);
      const targets = randInt(B * T, tiny.vocab_size, rand);
      const st = new Stage(rt, tiny, { layerStart: 0, layerEnd: 3 }, { B, T }, { bottleneck: bn });
      st.params.load(params);
      st.zeroGrads();
      st.setTokens(0, inputs);
      st.setTargets(0, targets);
      const lossT = st.forward(0);
      st.backward(0, { lossScale: 1 / (B * T) });
      const loss = (await rt.read(lossT))[0];
      const logits = await rt.read(st.logits(0));
      const grads = await st.params.read('grads');

      const ref = gpt64Forward(tiny, to64(params), inputs, targets, B, T, bn);
      const refGrads = gpt64Backward(tiny, to64(params), inputs, targets, B, T, bn);
      expect(Math.abs(loss - ref.loss), `seed=${seed}`).toBeLessThan(1e-5 * Math.max(1, ref.loss));
      expectClose(`logits seed=${seed}`, logits, ref.acts.logits, 2e-5 * maxAbs(ref.acts.logits), 1e-4);
      const specs = modelParamSpecs(tiny, bn);
      expect(specs.filter((s) => s.name.startsWith('bottleneck.')).length).toBe(8);
      for (const spec of specs) {
        const e = get(refGrads.grads, spec.name);
        expect(maxAbs(e), `${spec.name} has a gradient`).toBeGreaterThan(0);
        expectClose(`d${spec.name} seed=${seed}`, get(grads, spec.name), e, 1e-4 * Math.max(maxAbs(e), 1e-6), 2e-3);
      }
    });
  }
});

/** A pipeline of separate stages (own ParamStores), activations and gradients crossing through host memory. */
async function pipelineGrads(
  rt: Runtime,
  config: GPTConfig,
  bn: BottleneckConfig | null,
  cuts: number[],
  params: Map<string, Float32Array>,
  micro: { inputs: Uint32Array; targets: Uint32Array }[],
  dims: { B: number; T: number },
  codecs: { act: BoundaryCodec; grad: BoundaryCodec; seed: number; step: number },
): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const bounds = [0, ...cuts, config.n_layer];
  const stages = bounds.slice(1).map((end, i) => new Stage(rt, config, { layerStart: bounds[i], layerEnd: end }, dims, { bottleneck: bn }));
  for (const s of stages) {
    s.params.load(new Map([...params].filter(([k]) => s.params.has(k))));
    s.zeroGrads();
  }
  const last = stages[stages.length - 1];
  let loss = 0;
  for (const [mb, m] of micro.entries()) {
    stages[0].setTokens(0, m.inputs);
    last.setTargets(0, m.targets);
    let out = await rt.read(stages[0].forward(0));
    for (let s = 1; s < stages.length; s++) {
      stages[s].setInput(0, out);
      const x = stages[s].inputOf(0);
      codecs.act.roundTrip(rt, x, x.size, { seed: codecs.seed, step: codecs.step, mb, stream: 2 * (s - 1) });
      const y = stages[s].forward(0);
      out = await rt.read(y);
    }
    loss += out[0] / micro.length;
    let g = last.backward(0, { lossScale: 1 / (dims.B * dims.T * micro.length) });
    for (let s = stages.length - 2; s >= 0; s--) {
      if (!g) throw new Error('no input gradient');
      codecs.grad.roundTrip(rt, g, g.size, { seed: codecs.seed, step: codecs.step, mb, stream: 2 * s + 1 });
      const host = await rt.read(g);
      g = stages[s].backward(0, { gradOut: host });
    }
  }
  const grads = new Map<string, Float32Array>();
  for (const s of stages) {
    for (const [name, g] of await s.params.read('grads')) {
      const prev = grads.get(name);
      grads.set(name, prev ? prev.map((x, i) => x + g[i]) : g); // the tied wte: embedding's share + lm_head's share
    }
  }
  return { loss, grads };
}

describe('the single-peer engine at pipeline boundaries', () => {
  const dims = { B: 2, T: 9 };
  const schedule = { lr: 1e-3, minLr: 1e-4, warmup: 0, decaySteps: 10 };

  for (const [name, passthrough, codec] of [
    ['bottleneck, fp32 codecs', false, 'fp32'],
    ['passthrough bottleneck, int8 codecs', true, 'int8'],
  ] as const) {
    it(`3 separate stages (first, middle, last) == one Trainer with the same boundaries: ${name}`, async () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const rt = await gpuRuntime();
      const bn: BottleneckConfig = { width: 5, passthrough, after: [1, 2] };
      const spec = codec === 'fp32' ? ({ kind: 'fp32' } as const) : ({ kind: 'int8', block: 16, rounding: 'stochastic' } as const);
      const act = createCodec(rt, spec);
      const grad = createCodec(rt, spec);
      const params = randomParams(modelParamSpecs(tiny, bn), seed);
      const micro = [0, 1].map(() => ({
        inputs: randInt(dims.B * dims.T, tiny.vocab_size, rand),
        targets: randInt(dims.B * dims.T, tiny.vocab_size, rand),
      }));
      const step = 4;
      const runSeed = seed % 1000;
      const tr = await Trainer.create(rt, {
        config: tiny,
        ...dims,
        schedule,
        initial: params,
        seed: runSeed,
        tune: false,
        bottleneck: bn,
        boundaries: { after: [1, 2], act, grad },
      });
      expect(tr.stages.map((s) => s.role)).toEqual(['first', 'middle', 'last']);
      expect(tr.stages.map((s) => [s.inputWidth, s.outputWidth])).toEqual([
        [12, 5],
        [5, 5],
        [5, 12],
      ]);
      const loss = await tr.gradients(step, micro);
      const grads = await tr.params.read('grads');
      const ref = await pipelineGrads(rt, tiny, bn, [1, 2], params, micro, dims, { act, grad, seed: runSeed, step });
      expect(Math.abs(loss - ref.loss), `seed=${seed}`).toBeLessThan(1e-6);
      for (const s of modelParamSpecs(tiny, bn)) {
        const e = get(ref.grads, s.name);
        expectClose(`d${s.name} seed=${seed}`, get(grads, s.name), e, 1e-6 * Math.max(maxAbs(e), 1e-6), 1e-5);
      }
      if (codec === 'int8') {
        // the codec is really applied: without it the gradients differ
        const plain = await pipelineGrads(rt, tiny, bn, [1, 2], params, micro, dims, {
          act: createCodec(rt, { kind: 'fp32' }),
          grad: createCodec(rt, { kind: 'fp32' }),
          seed: runSeed,
          step,
        });
        const a = get(plain.grads, WTE);
        const b = get(grads, WTE);
        expect(a.some((x, i) => x !== b[i])).toBe(true);
      }
      // applyStep after gradients is a step; the state saved and restored round-trips
      const before = await tr.saveState();
      const r = await tr.applyStep(step);
      expect(r.gradNorm).toBeGreaterThan(0);
      expect(tr.stepsDone).toBe(1);
      const after = await tr.saveState();
      expect(after.params.some((x, i) => x !== before.params[i])).toBe(true);
      tr.loadState(before);
      expect(tr.stepsDone).toBe(0);
      expect(Buffer.from((await tr.params.readFlat('params')).buffer).equals(Buffer.from(before.params.buffer))).toBe(true);
      expect(() => tr.loadState({ ...before, m: new Float32Array(3) })).toThrow(/writeFlat m: 3 values/);
    });
  }

  it('with fp32 boundaries and no bottleneck, the split trainer ends on the one-stage trainer’s weights', async () => {
    const rt = await gpuRuntime();
    const text = loadCorpus();
    const tokenizer = CharTokenizer.fromCorpus(text);
    const data = Dataset.fromText(text, tokenizer, { valFraction: 0.1 });
    const config: GPTConfig = { n_layer: 2, n_head: 2, n_embd: 32, vocab_size: tokenizer.vocabSize, block_size: 32 };
    const batch = (it: number, micro: number) => sampleBatch(data.train, { seed: 7, step: it, micro, B: 4, T: 32 });
    const common = { config, B: 4, T: 32, seed: 3, schedule: { lr: 3e-3, minLr: 3e-4, warmup: 2, decaySteps: 10 }, tune: false };
    const one = await Trainer.create(rt, common);
    const split = await Trainer.create(rt, {
      ...common,
      boundaries: { after: [1], act: createCodec(rt, { kind: 'fp32' }), grad: createCodec(rt, { kind: 'fp32' }) },
    });
    for (let it = 0; it < 3; it++) {
      const a = await one.step(it, [batch(it, 0), batch(it, 1)]);
      const b = await split.step(it, [batch(it, 0), batch(it, 1)]);
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-6);
    }
    const pa = await one.params.readFlat('params');
    const pb = await split.params.readFlat('params');
    expectClose('split vs one-stage weights', pb, pa, 1e-6, 1e-5);
  });
});

describe('bottleneck shapes and configuration', () => {
  it('stage specs: the stage ending at l owns down, the one starting at l owns up, a spanning stage both', () => {
    const bn: BottleneckConfig = { width: 4, passthrough: false, after: [1, 2] };
    const names = (a: number, b: number) => stageParamSpecs(tiny, { layerStart: a, layerEnd: b }, bn).filter((s) => s.name.startsWith('bottleneck.'));
    expect(names(0, 1).map((s) => s.name)).toEqual(['bottleneck.1.down.weight', 'bottleneck.1.down.bias']);
    expect(names(1, 2).map((s) => s.name)).toEqual([
      'bottleneck.1.up.weight',
      'bottleneck.1.up.bias',
      'bottleneck.2.down.weight',
      'bottleneck.2.down.bias',
    ]);
    expect(names(2, 3).map((s) => [s.name, s.shape, s.decay])).toEqual([
      ['bottleneck.2.up.weight', [4, 12], true],
      ['bottleneck.2.up.bias', [12], false],
    ]);
    expect(names(0, 3).length).toBe(8);
    expect(stageParamSpecs(tiny, { layerStart: 0, layerEnd: 3 }, bn).map((s) => s.name)).toEqual(modelParamSpecs(tiny, bn).map((s) => s.name));
  });

  it('refuses wrong shapes and impossible configurations with clear errors', async () => {
    const rt = await gpuRuntime();
    const bn: BottleneckConfig = { width: 5, passthrough: true, after: [1] };
    const dims = { B: 1, T: 4 };
    const s1 = new Stage(rt, tiny, { layerStart: 1, layerEnd: 3 }, dims, { bottleneck: bn });
    expect(() => s1.setInput(0, new Float32Array(4 * 12))).toThrow(/48 values, expected 20 \[4, 5\]/);
    const s0 = new Stage(rt, tiny, { layerStart: 0, layerEnd: 1 }, dims, { bottleneck: bn });
    s0.setTokens(0, Uint32Array.from([1, 2, 3, 4]));
    expect(s0.forward(0).shape).toEqual([4, 5]);
    // the projections' matmuls are in the autotuner's list: down on the sending stage, up on the receiving one
    const down = { M: 4, K: 12, N: 5, bias: true, accumulate: false };
    const up = { M: 4, K: 5, N: 12, bias: true, accumulate: false };
    expect(s0.matmulShapes()).toContainEqual(down);
    expect(s0.matmulShapes()).not.toContainEqual(up);
    expect(s1.matmulShapes()).toContainEqual(up);
    expect(new Stage(rt, tiny, { layerStart: 0, layerEnd: 1 }, dims).matmulShapes()).not.toContainEqual(down);
    expect(() => s0.backward(0, { gradOut: new Float32Array(48) })).toThrow(/output gradient has 48 values, expected 20/);
    expect(() => new Stage(rt, tiny, { layerStart: 0, layerEnd: 1 }, dims, { bottleneck: { ...bn, width: 13 } })).toThrow(
      /width 13 exceeds n_embd 12/,
    );
    expect(() => new Stage(rt, tiny, { layerStart: 0, layerEnd: 1 }, dims, { bottleneck: { ...bn, after: [2, 1] } })).toThrow(/strictly increasing/);
    expect(() => new Stage(rt, tiny, { layerStart: 0, layerEnd: 1 }, dims, { bottleneck: { ...bn, after: [3] } })).toThrow(/not inside the model/);
    expect(() => new Stage(rt, tiny, { layerStart: 0, layerEnd: 1 }, dims, { bottleneck: { ...bn, width: 0 } })).toThrow(/bottleneck: width/);
    // a store built without the bottleneck cannot be shared by a bottlenecked stage
    const plain = new Stage(rt, tiny, { layerStart: 0, layerEnd: 3 }, dims);
    expect(() => new Stage(rt, tiny, { layerStart: 0, layerEnd: 3 }, dims, { params: plain.params, bottleneck: bn })).toThrow(
      /shared parameters lack bottleneck\.1\.down\.weight/,
    );
    expect(() => initParams(tiny, modelParamSpecs(tiny, bn), 1)).toThrow(/bottleneck parameter but no bottleneck config/);
  });

  it('init: projections normal with std 1/sqrt(fan_in) (down 1/sqrt(C), up 1/sqrt(k)), biases 0, seeded per tensor', () => {
    const big: GPTConfig = { ...tiny, n_embd: 64, n_head: 2 };
    const bn: BottleneckConfig = { width: 16, passthrough: false, after: [1] };
    const p = initParams(big, modelParamSpecs(big, bn), 9, bn);
    const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    const d = get(p, 'bottleneck.1.down.weight');
    const u = get(p, 'bottleneck.1.up.weight');
    expect(Math.abs(rms(d) / (1 / 8) - 1)).toBeLessThan(0.1); // 1024 samples: the RMS is within a few %
    expect(Math.abs(rms(u) / (1 / 4) - 1)).toBeLessThan(0.1);
    expect(get(p, 'bottleneck.1.down.bias').every((x) => x === 0)).toBe(true);
    expect(get(p, 'bottleneck.1.up.bias').every((x) => x === 0)).toBe(true);
    expect(initParams(big, modelParamSpecs(big, bn), 9, bn).get('bottleneck.1.down.weight')).toEqual(d); // seeded
    expect(initParams(big, modelParamSpecs(big, bn), 10, bn).get('bottleneck.1.down.weight')).not.toEqual(d);
    // a peer initialising only its stage draws the same values as the whole model (the swarm's stages agree)
    const receiving = initParams(big, stageParamSpecs(big, { layerStart: 1, layerEnd: 3 }, bn), 9, bn);
    expect(receiving.get('bottleneck.1.up.weight')).toEqual(u);
    expect(receiving.get('transformer.h.2.mlp.c_fc.weight')).toEqual(p.get('transformer.h.2.mlp.c_fc.weight'));
  });
});
