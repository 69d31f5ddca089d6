import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from './checkpoint';
import { gpt2ParamSpecs, type GPTConfig } from './config';
import { decodeSafetensors, encodeSafetensors, type StTensor } from './safetensors';
import { CharTokenizer } from './tokenizer';
import { freshSeed, randn, rng } from '../../tests/support/random';

const config: GPTConfig = { n_layer: 2, n_head: 2, n_embd: 8, vocab_size: 11, block_size: 5 };
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

function randomParams(c: GPTConfig, seed: number): Map<string, Float32Array> {
  const rand = rng(seed);
  return new Map(gpt2ParamSpecs(c).map((s) => [s.name, randn(numel(s.shape), rand)]));
}

/** The checkpoint's tensors as StTensor[] (to build variants with encodeSafetensors). */
function tensorsOf(c: GPTConfig, params: Map<string, Float32Array>): StTensor[] {
  return gpt2ParamSpecs(c).map((s) => ({ name: s.name, shape: s.shape, data: params.get(s.name)! }));
}

const fullMeta = (c: GPTConfig): Record<string, string> => ({
  n_layer: String(c.n_layer),
  n_head: String(c.n_head),
  n_embd: String(c.n_embd),
  vocab_size: String(c.vocab_size),
  block_size: String(c.block_size),
  format: 'pt',
});

describe('GPT-2 checkpoint', () => {
  it('round-trips config, parameters (bitwise), tokenizer and extra metadata', () => {
    const seed = freshSeed();
    const params = randomParams(config, seed);
    const tokenizer = CharTokenizer.fromCorpus('hello world').toJSON(); // 8 chars <= vocab 11
    const ck: Checkpoint = { config, params, tokenizer, extra: { step: '1200', run: 'tiny' } };
    const back = decodeCheckpoint(encodeCheckpoint(ck));
    expect(back.config).toEqual(config);
    expect(back.tokenizer).toBe(tokenizer);
    expect(back.extra).toEqual({ step: '1200', run: 'tiny' });
    expect([...back.params.keys()]).toEqual(gpt2ParamSpecs(config).map((s) => s.name));
    for (const [name, p] of params) expect(back.params.get(name), `${name} seed=${seed}`).toEqual(p);
  });

  it('writes tensors in gpt2ParamSpecs order with HF metadata (format pt, config as decimal strings)', () => {
    const bytes = encodeCheckpoint({ config, params: randomParams(config, 1) });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.__metadata__).toEqual(fullMeta(config));
    const specs = gpt2ParamSpecs(config);
    expect(Object.keys(header).filter((k) => k !== '__metadata__')).toEqual(specs.map((s) => s.name));
    let off = 0;
    for (const s of specs) {
      expect(header[s.name]).toEqual({ dtype: 'F32', shape: s.shape, data_offsets: [off, off + 4 * numel(s.shape)] });
      off += 4 * numel(s.shape);
    }
    expect(decodeCheckpoint(bytes).extra).toBeUndefined();
    expect(decodeCheckpoint(bytes).tokenizer).toBeUndefined();
  });

  it('refuses bad checkpoints on encode', () => {
    const params = randomParams(config, 2);
    const missing = new Map(params);
    missing.delete('transformer.h.1.mlp.c_fc.bias');
    expect(() => encodeCheckpoint({ config, params: missing })).toThrow(/"transformer.h.1.mlp.c_fc.bias" is missing/);
    const short = new Map(params).set('transformer.ln_f.bias', new Float32Array(3));
    expect(() => encodeCheckpoint({ config, params: short })).toThrow(/"transformer.ln_f.bias" has 3 values/);
    const unknown = new Map(params).set('lm_head.weight', new Float32Array(88));
    expect(() => encodeCheckpoint({ config, params: unknown })).toThrow(/unexpected parameter "lm_head.weight"/);
    expect(() => encodeCheckpoint({ config, params, extra: { n_head: '3' } })).toThrow(/"n_head" is reserved/);
    expect(() => encodeCheckpoint({ config, params, tokenizer: '{"type":"bpe"}' })).toThrow(/tokenizer is invalid/);
    const bigTok = CharTokenizer.fromCorpus('abcdefghijklmnop').toJSON();
    expect(() => encodeCheckpoint({ config, params, tokenizer: bigTok })).toThrow(/tokenizer has 16 tokens but vocab_size is 11/);
    expect(() => encodeCheckpoint({ config: { ...config, n_head: 3 }, params })).toThrow(/not divisible by n_head/);
  });

  it('names a missing, misshapen or unknown tensor on decode', () => {
    const params = randomParams(config, 3);
    const t = tensorsOf(config, params);
    const without = t.filter((x) => x.name !== 'transformer.h.0.attn.c_proj.weight');
    expect(() => decodeCheckpoint(encodeSafetensors(without, fullMeta(config)))).toThrow(/tensor "transformer.h.0.attn.c_proj.weight" is missing/);
    // right element count, wrong (transposed) shape
    const transposed = t.map((x) => (x.name === 'transformer.h.1.mlp.c_fc.weight' ? { ...x, shape: [32, 8] } : x));
    expect(() => decodeCheckpoint(encodeSafetensors(transposed, fullMeta(config)))).toThrow(
      /tensor "transformer.h.1.mlp.c_fc.weight" has shape \[32,8\], expected \[8,32\]/,
    );
    const extra = [...t, { name: 'transformer.h.0.attn.rotary', shape: [1], data: new Float32Array(1) }];
    expect(() => decodeCheckpoint(encodeSafetensors(extra, fullMeta(config)))).toThrow(/unexpected tensor "transformer.h.0.attn.rotary"/);
    const deeper = [...t, { name: 'transformer.h.2.ln_1.weight', shape: [8], data: new Float32Array(8) }];
    expect(() => decodeCheckpoint(encodeSafetensors(deeper, fullMeta(config)))).toThrow(/unexpected tensor "transformer.h.2.ln_1.weight"/);
  });

  it('tolerates HF attention buffers and a tied lm_head.weight of the right shape', () => {
    const params = randomParams(config, 4);
    const t = tensorsOf(config, params);
    const hf = [
      ...t,
      { name: 'transformer.h.0.attn.bias', shape: [1, 1, 5, 5], data: new Float32Array(25).fill(1) },
      { name: 'transformer.h.1.attn.bias', shape: [1, 1, 5, 5], data: new Float32Array(25).fill(1) },
      { name: 'transformer.h.1.attn.masked_bias', shape: [], data: Float32Array.from([-1e4]) },
      { name: 'lm_head.weight', shape: [11, 8], data: params.get('transformer.wte.weight')! },
    ];
    const ck = decodeCheckpoint(encodeSafetensors(hf, fullMeta(config)));
    expect(ck.params.size).toBe(gpt2ParamSpecs(config).length);
    expect(ck.params.has('lm_head.weight')).toBe(false);
    const badHead = [...t, { name: 'lm_head.weight', shape: [8, 11], data: new Float32Array(88) }];
    expect(() => decodeCheckpoint(encodeSafetensors(badHead, fullMeta(config)))).toThrow(/"lm_head.weight" has shape \[8,11\], expected \[11,8\]/);
    const strayBuffer = [...t, { name: 'transformer.h.5.attn.bias', shape: [1], data: new Float32Array(1) }];
    expect(() => decodeCheckpoint(encodeSafetensors(strayBuffer, fullMeta(config)))).toThrow(/unexpected tensor "transformer.h.5.attn.bias"/);
  });

  it('names a bad config field in metadata', () => {
    const t = tensorsOf(config, randomParams(config, 5));
    for (const bad of ['0', '-2', '2.0', '2.5', ' 2', 'two', '', '0x2', '1e1', '99999999999999999999']) {
      const meta = { ...fullMeta(config), n_layer: bad };
      expect(() => decodeCheckpoint(encodeSafetensors(t, meta)), bad).toThrow(/metadata n_layer must be a positive integer string/);
    }
    expect(() => decodeCheckpoint(encodeSafetensors(t, { ...fullMeta(config), n_head: '3' }))).toThrow(/n_embd 8 is not divisible by n_head 3/);
    // metadata that disagrees with the tensors: the shape check names the tensor
    expect(() => decodeCheckpoint(encodeSafetensors(t, { ...fullMeta(config), block_size: '6' }))).toThrow(
      /"transformer.wpe.weight" has shape \[5,8\], expected \[6,8\]/,
    );
    expect(() => decodeCheckpoint(encodeSafetensors(t, { ...fullMeta(config), n_layer: '3' }))).toThrow(/"transformer.h.2.ln_1.weight" is missing/);
  });

  it('infers n_layer, n_embd, vocab_size, block_size from shapes when metadata lacks them, but requires n_head', () => {
    const params = randomParams(config, 6);
    const t = tensorsOf(config, params);
    const ck = decodeCheckpoint(encodeSafetensors(t, { n_head: '2' }));
    expect(ck.config).toEqual(config);
    expect(ck.params.get('transformer.h.1.ln_2.bias')).toEqual(params.get('transformer.h.1.ln_2.bias'));
    expect(decodeCheckpoint(encodeSafetensors(t, { n_head: '2', n_embd: '8', format: 'pt' })).config).toEqual(config);
    expect(() => decodeCheckpoint(encodeSafetensors(t))).toThrow(/no n_head.*cannot be inferred.*add it to __metadata__/);
    const { n_head: _omit, ...allButHead } = fullMeta(config);
    expect(() => decodeCheckpoint(encodeSafetensors(t, allButHead))).toThrow(/no n_head/);
    const noWte = t.filter((x) => x.name !== 'transformer.wte.weight');
    expect(() => decodeCheckpoint(encodeSafetensors(noWte, { n_head: '2' }))).toThrow(/no vocab_size.*"transformer.wte.weight" is missing/);
  });

  it('reads a GPT2Model-style file (no "transformer." prefix, HF buffers, format pt) given n_head', () => {
    const params = randomParams(config, 7);
    const t = tensorsOf(config, params).map((x) => ({ ...x, name: x.name.replace(/^transformer\./, '') }));
    t.push({ name: 'h.0.attn.bias', shape: [1, 1, 5, 5], data: new Float32Array(25) });
    t.push({ name: 'h.1.attn.bias', shape: [1, 1, 5, 5], data: new Float32Array(25) });
    const ck = decodeCheckpoint(encodeSafetensors(t, { format: 'pt', n_head: '2' }));
    expect(ck.config).toEqual(config);
    expect(ck.params.get('transformer.h.1.attn.c_attn.weight')).toEqual(params.get('transformer.h.1.attn.c_attn.weight'));
    expect(ck.extra).toBeUndefined();
  });

  it('refuses an invalid tokenizer in metadata', () => {
    const t = tensorsOf(config, randomParams(config, 8));
    expect(() => decodeCheckpoint(encodeSafetensors(t, { ...fullMeta(config), tokenizer: 'nope' }))).toThrow(/tokenizer is invalid/);
  });

  it('checkpoint bytes are deterministic and decodable by the plain safetensors reader', () => {
    const ck = { config, params: randomParams(config, 9) };
    const a = encodeCheckpoint(ck);
    expect(encodeCheckpoint(ck)).toEqual(a);
    expect(decodeSafetensors(a).tensors.size).toBe(gpt2ParamSpecs(config).length);
  });
});
