import { describe, expect, it } from 'vitest';
import { BOTTLENECK_NAME, modelParamSpecs, type BottleneckConfig } from '../../src/model/bottleneck-config';
import { gpt2ParamSpecs, type GPTConfig } from '../../src/model/config';
import { freshSeed, randInt, randn, rng } from '../support/random';
import { gpt64Backward, gpt64Forward, initParams64, type Params64 } from './gpt64';

const config: GPTConfig = { n_layer: 2, n_head: 2, n_embd: 8, vocab_size: 11, block_size: 5 };
const B = 2;
const T = 5;

/** Init, then every tensor perturbed so that LN gains/biases and all biases are non-trivial and gradients are O(0.01..1). */
function randomParams(seed: number): Params64 {
  const rand = rng(seed ^ 0x5bd1e995);
  const params = initParams64(config, seed);
  for (const [name, p] of params) {
    const noise = randn(p.length, rand, name.includes('ln_') ? 0.3 : 0.4);
    for (let i = 0; i < p.length; i++) p[i] += noise[i];
  }
  return params;
}

describe('gpt64 reference', () => {
  it('loss at init is close to ln(vocab_size), probabilities are normalised', () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const params = initParams64(config, seed);
    const inputs = randInt(B * T, config.vocab_size, rand);
    const targets = randInt(B * T, config.vocab_size, rand);
    const { loss, acts } = gpt64Forward(config, params, inputs, targets, B, T);
    expect(Math.abs(loss - Math.log(config.vocab_size)), `seed=${seed} loss=${loss}`).toBeLessThan(0.05);
    for (let n = 0; n < B * T; n++) {
      let s = 0;
      for (let v = 0; v < config.vocab_size; v++) s += acts.probs[n * config.vocab_size + v];
      expect(s).toBeCloseTo(1, 12);
    }
    // mean of per-position losses is the loss
    expect(acts.losses.reduce((a, b) => a + b, 0) / (B * T)).toBeCloseTo(loss, 12);
    for (const k of [
      'encoded',
      'h.0.ln1',
      'h.0.qkv',
      'h.0.atty',
      'h.0.att',
      'h.0.res2',
      'h.0.fch',
      'h.0.fch_gelu',
      'h.0.out',
      'h.1.out',
      'lnf',
      'logits',
      'probs',
    ]) {
      expect(acts[k], k).toBeInstanceOf(Float64Array);
    }
    expect(acts['h.0.qkv'].length).toBe(B * T * 3 * config.n_embd);
    expect(acts['h.0.att'].length).toBe(B * config.n_head * T * T);
  });

  it('init follows initStd (ones, zeros, scaled residual projections) and is seeded', () => {
    const big: GPTConfig = { n_layer: 4, n_head: 2, n_embd: 32, vocab_size: 50, block_size: 16 };
    const p = initParams64(big, 7);
    expect(p.get('transformer.h.1.ln_2.weight')!.every((v) => v === 1)).toBe(true);
    expect(p.get('transformer.h.3.mlp.c_fc.bias')!.every((v) => v === 0)).toBe(true);
    const std = (a: Float64Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    expect(std(p.get('transformer.h.0.mlp.c_fc.weight')!)).toBeCloseTo(0.02, 2);
    expect(std(p.get('transformer.h.0.mlp.c_proj.weight')!)).toBeCloseTo(0.02 / Math.sqrt(8), 2);
    expect(initParams64(big, 7).get('transformer.wte.weight')).toEqual(p.get('transformer.wte.weight'));
    expect(initParams64(big, 8).get('transformer.wte.weight')).not.toEqual(p.get('transformer.wte.weight'));
  });

  it('attention is causal and batch rows are independent', () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const params = randomParams(seed);
    const inputs = randInt(B * T, config.vocab_size, rand);
    const targets = randInt(B * T, config.vocab_size, rand);
    const a = gpt64Forward(config, params, inputs, targets, B, T).acts.logits;
    const changed = inputs.slice();
    changed[T - 1] = (changed[T - 1] + 1) % config.vocab_size; // last position of row 0
    const b = gpt64Forward(config, params, changed, targets, B, T).acts.logits;
    const V = config.vocab_size;
    for (let i = 0; i < (T - 1) * V; i++) expect(b[i], `seed=${seed}`).toBe(a[i]); // earlier positions of row 0
    for (let i = T * V; i < 2 * T * V; i++) expect(b[i], `seed=${seed}`).toBe(a[i]); // row 1
    expect(b[(T - 1) * V]).not.toBe(a[(T - 1) * V]);
  });

  it('gradients of every parameter tensor match central finite differences', () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const params = randomParams(seed);
    const inputs = randInt(B * T, config.vocab_size, rand);
    const targets = randInt(B * T, config.vocab_size, rand);
    const { loss, grads } = gpt64Backward(config, params, inputs, targets, B, T);
    expect(loss).toBeCloseTo(gpt64Forward(config, params, inputs, targets, B, T).loss, 14);
    const h = 1e-5;
    const perTensor = 6;
    let checked = 0;
    let worst = 0;
    for (const spec of gpt2ParamSpecs(config)) {
      const p = params.get(spec.name)!;
      const g = grads.get(spec.name)!;
      expect(g.length, spec.name).toBe(p.length);
      const idx = new Set<number>([0, p.length - 1]);
      while (idx.size < Math.min(perTensor, p.length)) idx.add(Math.floor(rand() * p.length));
      // wte: also rows of tokens that occur (gradient through both the embedding and the tied head)
      if (spec.name === 'transformer.wte.weight') idx.add(inputs[0] * config.n_embd + 3);
      for (const i of idx) {
        const orig = p[i];
        p[i] = orig + h;
        const lp = gpt64Forward(config, params, inputs, targets, B, T).loss;
        p[i] = orig - h;
        const lm = gpt64Forward(config, params, inputs, targets, B, T).loss;
        p[i] = orig;
        const fd = (lp - lm) / (2 * h);
        const rel = Math.abs(fd - g[i]) / Math.max(Math.abs(fd), Math.abs(g[i]), 1e-4);
        worst = Math.max(worst, rel);
        expect(rel, `${spec.name}[${i}]: analytic ${g[i]} vs finite difference ${fd} (seed=${seed})`).toBeLessThan(1e-5);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(gpt2ParamSpecs(config).length * 2);
  });

  for (const passthrough of [false, true]) {
    it(`with a bottleneck (passthrough ${passthrough}): gradients of every tensor, the projections' included, match finite differences`, () => {
      const seed = freshSeed();
      const rand = rng(seed);
      const cfg: GPTConfig = { n_layer: 3, n_head: 2, n_embd: 8, vocab_size: 11, block_size: 5 };
      const bn: BottleneckConfig = { width: 3, passthrough, after: [1, 2] };
      const params = initParams64(cfg, seed);
      for (const spec of modelParamSpecs(cfg, bn)) {
        const n = spec.shape.reduce((a, b) => a * b, 1);
        if (!params.has(spec.name)) params.set(spec.name, new Float64Array(n));
        const p = params.get(spec.name)!;
        const noise = randn(n, rand, spec.name.includes('ln_') ? 0.3 : 0.4);
        for (let i = 0; i < n; i++) p[i] += noise[i];
      }
      const inputs = randInt(B * T, cfg.vocab_size, rand);
      const targets = randInt(B * T, cfg.vocab_size, rand);
      const fwd = gpt64Forward(cfg, params, inputs, targets, B, T, bn);
      // the bottleneck is really in the path: the narrow tensors exist with width k and the loss differs without it
      expect(fwd.acts['bn.1.z'].length).toBe(B * T * 3);
      expect(fwd.acts['bn.2.out'].length).toBe(B * T * cfg.n_embd);
      const { loss, grads } = gpt64Backward(cfg, params, inputs, targets, B, T, bn);
      expect(loss).toBeCloseTo(fwd.loss, 14);
      expect(Math.abs(loss - gpt64Forward(cfg, params, inputs, targets, B, T).loss)).toBeGreaterThan(1e-3);
      const h = 1e-5;
      let bnChecked = 0;
      for (const spec of modelParamSpecs(cfg, bn)) {
        const p = params.get(spec.name)!;
        const g = grads.get(spec.name)!;
        expect(g.length, spec.name).toBe(p.length);
        const idx = new Set<number>([0, p.length - 1]);
        while (idx.size < Math.min(5, p.length)) idx.add(Math.floor(rand() * p.length));
        for (const i of idx) {
          const orig = p[i];
          p[i] = orig + h;
          const lp = gpt64Forward(cfg, params, inputs, targets, B, T, bn).loss;
          p[i] = orig - h;
          const lm = gpt64Forward(cfg, params, inputs, targets, B, T, bn).loss;
          p[i] = orig;
          const fd = (lp - lm) / (2 * h);
          const rel = Math.abs(fd - g[i]) / Math.max(Math.abs(fd), Math.abs(g[i]), 1e-4);
          expect(rel, `${spec.name}[${i}]: analytic ${g[i]} vs finite difference ${fd} (seed=${seed})`).toBeLessThan(1e-5);
          if (BOTTLENECK_NAME.test(spec.name)) bnChecked++;
        }
      }
      expect(bnChecked).toBeGreaterThanOrEqual(8 * 4);
    });
  }

  it('refuses a bottleneck whose parameters are missing or whose boundaries are outside the model', () => {
    const cfg: GPTConfig = { n_layer: 3, n_head: 2, n_embd: 8, vocab_size: 11, block_size: 5 };
    const params = initParams64(cfg, 1);
    const ids = new Uint32Array(B * T);
    expect(() => gpt64Forward(cfg, params, ids, ids, B, T, { width: 3, passthrough: false, after: [1] })).toThrow(
      /parameter "bottleneck\.1\.down\.weight" is missing/,
    );
    expect(() => gpt64Forward(cfg, params, ids, ids, B, T, { width: 3, passthrough: false, after: [3] })).toThrow(/not inside the model/);
    expect(() => gpt64Forward(cfg, params, ids, ids, B, T, { width: 9, passthrough: false, after: [1] })).toThrow(/exceeds n_embd/);
  });
});
