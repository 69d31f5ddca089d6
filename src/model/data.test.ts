import { describe, expect, it } from 'vitest';
import { DEFAULT_CORPUS_PATH, loadCorpus } from './corpus-node';
import { Dataset, evalBatches, hashKeys, sampleBatch, sampleOffset } from './data';
import { CharTokenizer } from './tokenizer';

describe('CharTokenizer', () => {
  it('builds the sorted vocabulary, encodes and decodes', () => {
    const tok = CharTokenizer.fromCorpus('hello, world!\n');
    expect(tok.chars).toEqual(['\n', ' ', '!', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
    expect(tok.vocabSize).toBe(11);
    const ids = tok.encode('hello');
    expect(ids).toBeInstanceOf(Uint32Array);
    expect(Array.from(ids)).toEqual([6, 5, 7, 7, 8]);
    expect(tok.decode(ids)).toBe('hello');
    expect(tok.decode([0, 1])).toBe('\n ');
  });

  it('sorts by code point (not UTF-16 code unit) and treats astral characters as one token', () => {
    const tok = CharTokenizer.fromCorpus('b\u{1F600}a\uFF5Ea');
    expect(tok.chars).toEqual(['a', 'b', '\uFF5E', '\u{1F600}']);
    expect(Array.from(tok.encode('a\u{1F600}b'))).toEqual([0, 3, 1]);
    expect(tok.decode(tok.encode('\u{1F600}\uFF5E'))).toBe('\u{1F600}\uFF5E');
  });

  it('names unknown characters and out-of-range ids', () => {
    const tok = CharTokenizer.fromCorpus('abc');
    expect(() => tok.encode('abz')).toThrow(/"z" \(U\+007A\) at offset 2 is not in the vocabulary/);
    expect(() => tok.encode('a\u{1F600}')).toThrow(/U\+1F600/);
    expect(() => tok.decode([0, 3])).toThrow(/token id 3 at index 1 is out of range \[0, 3\)/);
    expect(() => CharTokenizer.fromCorpus('')).toThrow(/empty/);
  });

  it('round-trips through JSON and validates it', () => {
    const tok = CharTokenizer.fromCorpus('the quick brown fox \u{1F98A}\n');
    const back = CharTokenizer.fromJSON(tok.toJSON());
    expect(back.chars).toEqual(tok.chars);
    expect(JSON.parse(tok.toJSON())).toEqual({ type: 'char', chars: tok.chars });
    for (const [s, re] of [
      ['{', /not valid JSON/],
      ['[]', /not a JSON object/],
      ['{"type":"bpe","chars":["a"]}', /type must be "char"/],
      ['{"type":"char"}', /"chars" must be an array/],
      ['{"type":"char","chars":[]}', /empty/],
      ['{"type":"char","chars":["a","bc"]}', /entry 1 \("bc"\) is not a single character/],
      ['{"type":"char","chars":["a",3]}', /entry 1 \(3\) is not a single character/],
      ['{"type":"char","chars":["b","a"]}', /entry 1 \("a"\) is not in strictly increasing/],
      ['{"type":"char","chars":["a","a"]}', /entry 1 \("a"\) is not in strictly increasing/],
    ] as const) {
      expect(() => CharTokenizer.fromJSON(s), s).toThrow(re);
    }
  });
});

describe('tinyshakespeare', () => {
  const text = loadCorpus();
  const tok = CharTokenizer.fromCorpus(text);

  it('loads from public/ with the nanoGPT vocabulary and split', () => {
    expect(DEFAULT_CORPUS_PATH).toMatch(/public[\\/]tinyshakespeare\.txt$/);
    expect(text.length).toBe(1_115_394);
    expect(tok.vocabSize).toBe(65);
    expect(tok.chars.join('')).toBe("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    const ds = Dataset.fromText(text, tok, { valFraction: 0.1 });
    // nanoGPT shakespeare_char/prepare.py: train has 1,003,854 tokens, val has 111,540 tokens
    expect(ds.train.length).toBe(1_003_854);
    expect(ds.val.length).toBe(111_540);
    expect(tok.decode(ds.train.subarray(0, 14))).toBe('First Citizen:');
    expect(tok.decode(ds.val.subarray(-20))).toBe(text.slice(-20));
  });

  it('refuses bad inputs', () => {
    expect(() => Dataset.fromText('abc', tok, { valFraction: 1 })).toThrow(/valFraction/);
    expect(() => loadCorpus('/nonexistent/corpus.txt')).toThrow(/cannot read \/nonexistent\/corpus.txt/);
  });
});

describe('sampleBatch', () => {
  const tokens = Uint32Array.from({ length: 1000 }, (_, i) => i); // token = position: offsets are visible
  const keys = { seed: 1337, step: 5, micro: 0, B: 4, T: 8 };

  it('rows are contiguous windows with targets shifted by one', () => {
    const { inputs, targets } = sampleBatch(tokens, keys);
    expect(inputs.length).toBe(32);
    for (let r = 0; r < 4; r++) {
      const o = inputs[r * 8];
      expect(o).toBeLessThanOrEqual(1000 - 8 - 1);
      for (let t = 0; t < 8; t++) {
        expect(inputs[r * 8 + t]).toBe(o + t);
        expect(targets[r * 8 + t]).toBe(o + t + 1);
      }
    }
  });

  it('is a pure function of (seed, step, micro) and pinned across machines', () => {
    const a = sampleBatch(tokens, keys);
    expect(sampleBatch(tokens, keys)).toEqual(a);
    // Golden values: the sampler must give these offsets everywhere (32-bit integer math only).
    const offsets = (k: typeof keys) => Array.from({ length: k.B }, (_, r) => sampleBatch(tokens, k).inputs[r * k.T]);
    expect(offsets(keys)).toEqual(GOLDEN_OFFSETS);
    expect(hashKeys([0])).toBe(GOLDEN_HASH0);
    expect(offsets({ ...keys, micro: 1 })).not.toEqual(offsets(keys));
    expect(offsets({ ...keys, step: 6 })).not.toEqual(offsets(keys));
    expect(offsets({ ...keys, seed: 1338 })).not.toEqual(offsets(keys));
    // large keys (above 2^32) are distinct from their low words
    expect(offsets({ ...keys, step: 2 ** 32 + 5 })).not.toEqual(offsets(keys));
  });

  it('offsets cover the whole range roughly uniformly, including both ends', () => {
    const small = Uint32Array.from({ length: 12 }, (_, i) => i); // T=3: offsets 0..8
    const counts = new Array(9).fill(0);
    for (let step = 0; step < 900; step++) {
      const { inputs } = sampleBatch(small, { seed: 1, step, micro: 0, B: 10, T: 3 });
      for (let r = 0; r < 10; r++) counts[inputs[r * 3]]++;
    }
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150); // ~4.7 sigma
    // the minimum-size corpus has exactly one window
    expect(sampleOffset(4, 3, 9, 9, 9, 9)).toBe(0);
  });

  it('refuses bad arguments', () => {
    expect(() => sampleBatch(tokens.subarray(0, 8), keys)).toThrow(/at least T\+1 = 9 tokens, have 8/);
    expect(() => sampleBatch(tokens, { ...keys, B: 0 })).toThrow(/B must be a positive integer/);
    expect(() => sampleBatch(tokens, { ...keys, T: 1.5 })).toThrow(/T must be a positive integer/);
    expect(() => sampleBatch(tokens, { ...keys, micro: -1 })).toThrow(/micro must be a non-negative safe integer/);
    expect(() => sampleBatch(tokens, { ...keys, seed: 0.5 })).toThrow(/seed/);
  });
});

describe('evalBatches', () => {
  const tokens = Uint32Array.from({ length: 1001 }, (_, i) => i);

  it('evenly spaced, non-overlapping windows from the first to the last possible offset', () => {
    const batches = evalBatches(tokens, { B: 4, T: 10, maxBatches: 5 });
    expect(batches.length).toBe(5);
    const offs = batches.flatMap((b) => Array.from({ length: 4 }, (_, r) => b.inputs[r * 10]));
    expect(offs[0]).toBe(0);
    expect(offs[offs.length - 1]).toBe(1001 - 10 - 1);
    for (let i = 1; i < offs.length; i++) {
      expect(offs[i] - offs[i - 1]).toBeGreaterThanOrEqual(10);
      expect(offs[i] - offs[i - 1]).toBeLessThanOrEqual(Math.ceil(990 / 19));
    }
    for (const b of batches) for (let i = 0; i < 40; i++) expect(b.targets[i]).toBe(b.inputs[i] + 1);
    expect(evalBatches(tokens, { B: 4, T: 10, maxBatches: 5 })).toEqual(batches);
  });

  it('caps the count at what fits without overlap, at least one batch', () => {
    expect(evalBatches(tokens, { B: 4, T: 10, maxBatches: 1000 }).length).toBe(25); // 100 windows / 4
    const tiny = Uint32Array.from({ length: 12 }, (_, i) => i);
    const [only, ...rest] = evalBatches(tiny, { B: 4, T: 5, maxBatches: 3 });
    expect(rest.length).toBe(0);
    expect(Array.from({ length: 4 }, (_, r) => only.inputs[r * 5])).toEqual([0, 2, 4, 6]);
    expect(evalBatches(tiny, { B: 1, T: 11, maxBatches: 3 }).length).toBe(1);
    expect(() => evalBatches(tiny, { B: 1, T: 12, maxBatches: 1 })).toThrow(/at least T\+1/);
    expect(() => evalBatches(tiny, { B: 1, T: 2, maxBatches: 0 })).toThrow(/maxBatches/);
  });
});

const GOLDEN_OFFSETS = [871, 819, 796, 301];
const GOLDEN_HASH0 = 3249202601;
