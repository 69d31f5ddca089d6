import { describe, expect, it } from 'vitest';
import type { DataSpec } from '../protocol/run-config';
import { dataSpecSchema } from '../protocol/run-config';
import { GPT2_VOCAB, Gpt2Tokenizer, gpt2Ids } from './bpe-tokenizer';
import { Dataset } from './data';
import { prepareTextData, TextDataError, tokenizerFromJSON, tokensSha256, type TextDataSpec } from './text-data';
import { bytesToTokens, tokensToBytes } from './token-hash';
import { CharTokenizer } from './tokenizer';

// Our own words (not tinyshakespeare), with accents, CJK and emoji (multi-byte UTF-8, surrogate pairs).
const TEXT = Array.from(
  { length: 30 },
  (_, i) => `Line ${i}: the garden kept its own weather, café chairs and 雨 on the glass 🌧️; nobody asked why the kettle sang 🫖.\n`,
).join('');

// The protocol's DataSpec and the model's TextDataSpec are the same shape (the model layer cannot import protocol).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same: Same<DataSpec, TextDataSpec> = true;
void same;

describe('Gpt2Tokenizer', () => {
  it('round-trips unicode and emoji, full and used', () => {
    for (const tok of [Gpt2Tokenizer.full(), Gpt2Tokenizer.usedBy(gpt2Ids(TEXT))]) {
      expect(tok.decode(tok.encode(TEXT))).toBe(TEXT);
    }
    expect(Gpt2Tokenizer.full().vocabSize).toBe(50257);
    expect(GPT2_VOCAB).toBe(50257);
  });

  it("'used' renumbers densely in increasing GPT-2 id order and maps back", () => {
    const g = gpt2Ids('b a b a c');
    const used = Gpt2Tokenizer.usedBy(g);
    const sorted = [...new Set(g)].sort((x, y) => x - y);
    expect(used.ids).toEqual(sorted);
    expect(used.vocabSize).toBe(sorted.length);
    const dense = used.encode('b a b a c');
    expect(Array.from(dense)).toEqual(g.map((x) => sorted.indexOf(x)));
    expect(Math.max(...dense)).toBe(sorted.length - 1);
    expect(used.decode(dense)).toBe('b a b a c');
  });

  it('treats special-token text as plain text', () => {
    const tok = Gpt2Tokenizer.full();
    const ids = tok.encode('a <|endoftext|> b');
    expect(Array.from(ids)).not.toContain(50256);
    expect(tok.decode(ids)).toBe('a <|endoftext|> b');
  });

  it('refuses text outside a used vocabulary and ids out of range, naming them', () => {
    const used = Gpt2Tokenizer.usedBy(gpt2Ids('hello world'));
    expect(() => used.encode('zebra')).toThrow(/not in this run's 'used' vocabulary/);
    expect(() => used.decode([used.vocabSize])).toThrow(/out of range/);
    expect(() => Gpt2Tokenizer.full().decode([50257])).toThrow(/out of range \[0, 50257\)/);
    expect(() => Gpt2Tokenizer.full().decode([1.5])).toThrow(/out of range/);
  });
});

describe('prepareTextData', () => {
  it('splits like Dataset.fromText (char) and names both splits by sha256', async () => {
    const d = await prepareTextData(TEXT, { tokenizer: 'char', name: 'garden.txt' });
    const ref = Dataset.fromText(TEXT, CharTokenizer.fromCorpus(TEXT), { valFraction: 0.1 });
    expect(Array.from(d.train)).toEqual(Array.from(ref.train));
    expect(Array.from(d.val)).toEqual(Array.from(ref.val));
    expect(d.spec.tokenizer).toBe('char');
    expect(d.spec.vocab).toBeUndefined();
    expect(d.spec.trainTokens).toBe(d.train.length);
    expect(d.spec.trainSha256).toBe(await tokensSha256(d.train));
    expect(dataSpecSchema.parse(d.spec)).toEqual(d.spec);
  });

  it('gpt2 used: a small dense vocabulary; full: 50,257; both valid DataSpecs', async () => {
    const used = await prepareTextData(TEXT, { tokenizer: 'gpt2', name: 'g' });
    const full = await prepareTextData(TEXT, { tokenizer: 'gpt2', vocab: 'full', name: 'g' });
    expect(used.spec.vocab).toBe('used');
    expect(used.tokenizer.vocabSize).toBeLessThan(200);
    expect(Math.max(...used.train, ...used.val)).toBe(used.tokenizer.vocabSize - 1);
    expect(full.tokenizer.vocabSize).toBe(50257);
    expect(used.train.length).toBe(full.train.length);
    expect(used.spec.trainSha256).not.toBe(full.spec.trainSha256);
    expect(used.tokenizer.decode(used.train) + used.tokenizer.decode(used.val)).toBe(TEXT);
    dataSpecSchema.parse(used.spec);
    dataSpecSchema.parse(full.spec);
  });

  it('is stable: the same text gives the same hashes; one character more does not', async () => {
    const a = await prepareTextData(TEXT, { tokenizer: 'gpt2', name: 'a' });
    const b = await prepareTextData(TEXT, { tokenizer: 'gpt2', name: 'b' });
    const c = await prepareTextData(TEXT.replace('garden', 'gardens'), { tokenizer: 'gpt2', name: 'c' });
    expect(b.spec.trainSha256).toBe(a.spec.trainSha256);
    expect(b.spec.valSha256).toBe(a.spec.valSha256);
    expect(c.spec.trainSha256).not.toBe(a.spec.trainSha256);
    // sha256 of the bytes 01 00 00 00 02 00 00 00 (ids 1, 2 as little-endian u32), by Node's own sha256; a view into
    // a larger buffer hashes only its own ids.
    expect(await tokensSha256(Uint32Array.of(1, 2))).toBe(await sha([1, 0, 0, 0, 2, 0, 0, 0]));
    expect(await tokensSha256(Uint32Array.of(9, 1, 2, 9).subarray(1, 3))).toBe(await sha([1, 0, 0, 0, 2, 0, 0, 0]));
  });

  it('refuses empty text, text too short for a window, a 1-id used vocabulary', async () => {
    await expect(prepareTextData('', { tokenizer: 'char', name: 'empty.txt' })).rejects.toThrow(/"empty.txt" is empty/);
    await expect(prepareTextData('short text', { tokenizer: 'gpt2', name: 's.txt' })).rejects.toThrow(/"s.txt" is too short.*at least 65/);
    await expect(prepareTextData('a'.repeat(50), { tokenizer: 'char', name: 'x', window: 8 })).rejects.toThrow(TextDataError);
    // 'aaaa…' of one BPE token repeated: one id.
    await expect(prepareTextData(' the'.repeat(500), { tokenizer: 'gpt2', name: 'one.txt', window: 8 })).rejects.toThrow(/at least 2 ids/);
    // The same text with the full vocabulary is fine.
    const ok = await prepareTextData(' the'.repeat(500), { tokenizer: 'gpt2', vocab: 'full', name: 'one.txt', window: 8 });
    expect(ok.train.length).toBe(450);
  });
});

describe('tokenizerFromJSON', () => {
  it('round-trips char, gpt2 full and gpt2 used', async () => {
    for (const opts of [{ tokenizer: 'char' }, { tokenizer: 'gpt2', vocab: 'full' }, { tokenizer: 'gpt2', vocab: 'used' }] as const) {
      const d = await prepareTextData(TEXT, { ...opts, name: 'g' });
      const t = tokenizerFromJSON(d.tokenizer.toJSON());
      expect(t.kind).toBe(opts.tokenizer);
      expect(t.vocabSize).toBe(d.tokenizer.vocabSize);
      expect(Array.from(t.encode(TEXT))).toEqual(Array.from(d.tokenizer.encode(TEXT)));
      expect(t.toJSON()).toBe(d.tokenizer.toJSON());
    }
  });

  it('refuses malformed JSON with a message, never crashes', () => {
    const bad = [
      'not json',
      'null',
      '[]',
      '{"type":"wordpiece"}',
      '{"type":"gpt2"}',
      '{"type":"gpt2","vocab":"used"}',
      '{"type":"gpt2","vocab":"used","ids":[5]}',
      '{"type":"gpt2","vocab":"used","ids":[5,5]}',
      '{"type":"gpt2","vocab":"used","ids":[9,3]}',
      '{"type":"gpt2","vocab":"used","ids":[1,50257]}',
      '{"type":"gpt2","vocab":"used","ids":[1,"2"]}',
      '{"type":"char","chars":[]}',
      '{"type":"char","chars":["ab"]}',
    ];
    for (const j of bad) expect(() => tokenizerFromJSON(j), j).toThrow(/tokenizer JSON|Gpt2Tokenizer|CharTokenizer/);
  });
});

describe('token bytes', () => {
  it('little-endian u32 both ways; refuses a partial id', () => {
    const t = Uint32Array.of(1, 0x01020304, 0xffffffff);
    const b = tokensToBytes(t);
    expect(Array.from(b.slice(4, 8))).toEqual([4, 3, 2, 1]);
    expect(Array.from(bytesToTokens(b.slice(), 'x'))).toEqual(Array.from(t));
    expect(() => bytesToTokens(new Uint8Array(5), 'train.u32')).toThrow(/train.u32: 5 bytes/);
  });
});

async function sha(bytes: number[]): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(Uint8Array.from(bytes)).digest('hex');
}
