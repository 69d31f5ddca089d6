// Checkpoints of a model with a learned bottleneck: the projections are saved under their own names and the
// bottleneck in the metadata, so a checkpoint round-trips bitwise and the eval / sample paths rebuild the same
// model from it; a file whose bottleneck tensors or metadata do not fit is refused naming the problem.
import { describe, expect, it } from 'vitest';
import { modelParamSpecs, type BottleneckConfig } from '../../src/model/bottleneck-config';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/model/checkpoint';
import type { GPTConfig } from '../../src/model/config';
import { ParamStore } from '../../src/model/params';
import { encodeSafetensors } from '../../src/model/safetensors';
import { Sampler } from '../../src/model/sampler';
import { stageParamSpecs } from '../../src/model/stage';
import { Trainer } from '../../src/model/trainer';
import { freshSeed, gpuRuntime, randInt, randn, rng } from '../support/gpu';

const config: GPTConfig = { n_layer: 2, n_head: 2, n_embd: 8, vocab_size: 11, block_size: 6 };
const bn: BottleneckConfig = { width: 3, passthrough: true, after: [1] };
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

function randomParams(seed: number): Map<string, Float32Array> {
  const rand = rng(seed);
  return new Map(modelParamSpecs(config, bn).map((s) => [s.name, randn(numel(s.shape), rand, 0.3)]));
}

const meta = (extra: Record<string, string> = {}): Record<string, string> => ({
  n_layer: '2',
  n_head: '2',
  n_embd: '8',
  vocab_size: '11',
  block_size: '6',
  format: 'pt',
  ...extra,
});

describe('checkpoint with a bottleneck', () => {
  it('round-trips the bottleneck and its parameters bitwise', () => {
    const params = randomParams(freshSeed());
    const back = decodeCheckpoint(encodeCheckpoint({ config, bottleneck: bn, params }));
    expect(back.bottleneck).toEqual(bn);
    expect([...back.params.keys()]).toEqual(modelParamSpecs(config, bn).map((s) => s.name));
    for (const [k, v] of params) expect(Buffer.from(back.params.get(k)!.buffer).equals(Buffer.from(v.buffer)), k).toBe(true);
    // a plain checkpoint has no bottleneck and stays as it was
    const plain = new Map([...params].filter(([k]) => !k.startsWith('bottleneck.')));
    expect(decodeCheckpoint(encodeCheckpoint({ config, params: plain })).bottleneck).toBeUndefined();
  });

  it('refuses bottleneck tensors or metadata that do not fit', () => {
    const params = randomParams(freshSeed());
    const tensors = (drop = '', reshape = '') =>
      modelParamSpecs(config, bn)
        .filter((s) => s.name !== drop)
        .map((s) => ({ name: s.name, shape: s.name === reshape ? [numel(s.shape)] : s.shape, data: params.get(s.name)! }));
    const json = JSON.stringify(bn);
    expect(() => decodeCheckpoint(encodeSafetensors(tensors('bottleneck.1.up.bias'), meta({ bottleneck: json })))).toThrow(
      /tensor "bottleneck\.1\.up\.bias" is missing/,
    );
    expect(() => decodeCheckpoint(encodeSafetensors(tensors('', 'bottleneck.1.down.weight'), meta({ bottleneck: json })))).toThrow(
      /"bottleneck\.1\.down\.weight" has shape \[24\], expected \[8,3\]/,
    );
    expect(() => decodeCheckpoint(encodeSafetensors(tensors(), meta()))).toThrow(/unexpected tensor "bottleneck\.1\.down\.weight"/);
    expect(() => decodeCheckpoint(encodeSafetensors(tensors(), meta({ bottleneck: '{"width":3' })))).toThrow(/metadata bottleneck is invalid/);
    expect(() => decodeCheckpoint(encodeSafetensors(tensors(), meta({ bottleneck: JSON.stringify({ ...bn, width: 9 }) })))).toThrow(
      /metadata bottleneck is invalid: bottleneck: width 9 exceeds n_embd 8/,
    );
    expect(() => decodeCheckpoint(encodeSafetensors(tensors(), meta({ bottleneck: JSON.stringify({ ...bn, after: [2] }) })))).toThrow(
      /not inside the model/,
    );
    expect(() => encodeCheckpoint({ config, params })).toThrow(/unexpected parameter "bottleneck\.1\.down\.weight"/);
    const plain = new Map([...params].filter(([k]) => !k.startsWith('bottleneck.')));
    expect(() => encodeCheckpoint({ config, params: plain, extra: { bottleneck: 'x' } })).toThrow(/extra metadata key "bottleneck" is reserved/);
  });

  it('a trained model reloads from its checkpoint: same validation loss, and the sampler runs it', async () => {
    const seed = freshSeed();
    const rand = rng(seed);
    const rt = await gpuRuntime();
    const B = 2;
    const T = 6;
    const batch = () => ({ inputs: randInt(B * T, config.vocab_size, rand), targets: randInt(B * T, config.vocab_size, rand) });
    const schedule = { lr: 1e-2, minLr: 1e-3, warmup: 0, decaySteps: 5 };
    const tr = await Trainer.create(rt, { config, B, T, schedule, seed: 5, tune: false, bottleneck: bn });
    for (let it = 0; it < 3; it++) await tr.step(it, [batch()]);
    const val = [batch(), batch()];
    const loss = await tr.evaluate(val);
    const ck = decodeCheckpoint(encodeCheckpoint({ config, bottleneck: bn, params: await tr.exportParams() }));
    const again = await Trainer.create(rt, { config: ck.config, bottleneck: ck.bottleneck, B, T, schedule, initial: ck.params, tune: false });
    expect(await again.evaluate(val)).toBe(loss);
    const store = new ParamStore(rt, stageParamSpecs(ck.config, { layerStart: 0, layerEnd: 2 }, ck.bottleneck));
    store.load(ck.params);
    const out = await new Sampler(rt, ck.config, store, ck.bottleneck ?? null).generate(Uint32Array.of(1, 2), { maxNewTokens: 4, seed: 1 });
    expect(out.length).toBe(4);
  });
});
