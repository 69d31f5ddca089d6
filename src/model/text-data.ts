// A person's own text as a run's dataset (docs/deployment.md, "Your own data"): tokenize it (characters or GPT-2
// BPE), split it like nanoGPT (Dataset.fromText: the first 1 - valFraction of the tokens train, the rest validate),
// and name both splits by their sha256 so every peer, tab or Node, can check it trains on the same bytes.
import { Gpt2Tokenizer, gpt2Ids } from './bpe-tokenizer';
import { splitTokens } from './data';
import { gpt2VocabSize } from './gpt2-vocab';
import type { TextTokenizer } from './text-tokenizer';
import { tokensSha256 } from './token-hash';
import { CharTokenizer } from './tokenizer';

export type { TextTokenizer } from './text-tokenizer';
export { tokensSha256 } from './token-hash';

export type TokenizerKind = 'char' | 'gpt2';
export type VocabKind = 'used' | 'full';

/**
 * The run config's DataSpec (src/protocol/run-config.ts) as the model layer writes it; the protocol's zod schema
 * checks it at the boundary (a compile-time test keeps the two the same).
 */
export interface TextDataSpec {
  tokenizer: TokenizerKind;
  vocab?: VocabKind;
  name: string;
  trainSha256: string;
  valSha256: string;
  trainTokens: number;
  valTokens: number;
  url?: string;
}

export interface PrepareOptions {
  tokenizer: TokenizerKind;
  /** gpt2 only (default 'used'); ignored for 'char', whose vocabulary is always the text's characters. */
  vocab?: VocabKind;
  /** What the person called it (a file's base name). */
  name: string;
  /** Default 0.1 (nanoGPT). */
  valFraction?: number;
  /**
   * The shortest window a run may use (T): both splits need T+1 tokens (a batch row and its targets). Default 64,
   * the runs' default block size; a run with a longer T checks again (buildRun).
   */
  window?: number;
}

export interface TextData {
  /** No `url`: whoever serves the splits adds it. */
  spec: TextDataSpec;
  train: Uint32Array;
  val: Uint32Array;
  tokenizer: TextTokenizer;
}

export const DEFAULT_VAL_FRACTION = 0.1;
export const DEFAULT_WINDOW = 64;

export class TextDataError extends Error {
  override name = 'TextDataError';
}

/** Tokenizes and splits `text`; refuses (TextDataError) an empty text, one too short for a window, a 1-id vocabulary. */
export async function prepareTextData(text: string, o: PrepareOptions): Promise<TextData> {
  const valFraction = o.valFraction ?? DEFAULT_VAL_FRACTION;
  const window = o.window ?? DEFAULT_WINDOW;
  const what = JSON.stringify(o.name);
  if (text.length === 0) throw new TextDataError(`${what} is empty: a dataset needs text to train on`);
  let tokenizer: TextTokenizer;
  let tokens: Uint32Array;
  if (o.tokenizer === 'char') {
    tokenizer = CharTokenizer.fromCorpus(text);
    tokens = tokenizer.encode(text);
  } else {
    const ids = gpt2Ids(text);
    let bpe: Gpt2Tokenizer;
    try {
      bpe = (o.vocab ?? 'used') === 'full' ? Gpt2Tokenizer.full() : Gpt2Tokenizer.usedBy(ids);
    } catch (e) {
      throw new TextDataError(`${what}: ${(e as Error).message}`, { cause: e });
    }
    tokenizer = bpe;
    tokens = bpe.fromGpt2(ids);
  }
  const { train, val } = splitTokens(tokens, valFraction);
  const need = window + 1;
  if (train.length < need || (valFraction > 0 && val.length < need)) {
    throw new TextDataError(
      `${what} is too short: ${tokens.length} ${o.tokenizer} tokens split into ${train.length} train + ${val.length} validation, ` +
        `and each split needs at least ${need} (a window of ${window} tokens and its target); give a longer text`,
    );
  }
  const [trainSha256, valSha256] = await Promise.all([tokensSha256(train), tokensSha256(val)]);
  const spec: TextDataSpec = {
    tokenizer: o.tokenizer,
    ...(o.tokenizer === 'gpt2' ? { vocab: o.vocab ?? 'used' } : {}),
    name: o.name,
    trainSha256,
    valSha256,
    trainTokens: train.length,
    valTokens: val.length,
  };
  return { spec, train, val, tokenizer };
}

/** The tokenizer a `tokenizer.json` (or TextTokenizer.toJSON()) names; throws, saying what is wrong, for anything else. */
export function tokenizerFromJSON(json: string): TextTokenizer {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new TextDataError(`tokenizer JSON: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TextDataError('tokenizer JSON: not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.type === 'char') return CharTokenizer.fromJSON(json);
  if (o.type !== 'gpt2') throw new TextDataError(`tokenizer JSON: type must be "char" or "gpt2", got ${JSON.stringify(o.type)}`);
  gpt2VocabSize(o); // checks the shape and the ids
  return o.vocab === 'full' ? Gpt2Tokenizer.full() : Gpt2Tokenizer.fromIds(o.ids as unknown[]);
}
