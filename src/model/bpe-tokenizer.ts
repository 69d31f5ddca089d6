// GPT-2 byte-pair encoding (r50k_base, 50,257 ids) through gpt-tokenizer. Two vocabularies:
//   'full': GPT-2's ids as they are (a 50,257-row embedding and head);
//   'used': only the ids one text uses, renumbered densely in increasing GPT-2 id order, so a small model on a CPU
//           adapter trains a head the size of the text's vocabulary. Decoding maps back; a sample can only hold
//           tokens the text had.
// This module pulls in the BPE ranks (~0.5 MB): pages import it lazily (through text-data.ts).
import { decode as gpt2Decode, encode as gpt2Encode, vocabularySize } from 'gpt-tokenizer/encoding/r50k_base';
import { checkGpt2Ids, GPT2_VOCAB } from './gpt2-vocab';
import type { TextTokenizer } from './text-tokenizer';

export { GPT2_VOCAB };
if (vocabularySize !== GPT2_VOCAB) throw new Error(`gpt-tokenizer r50k_base has ${vocabularySize} ids, expected ${GPT2_VOCAB}`);

/** User text is data: `<|endoftext|>` in it is five plain tokens, never the special token (and never an error). */
const AS_TEXT = { disallowedSpecial: new Set<string>() };

/** GPT-2 ids of `text` (no special tokens). */
export function gpt2Ids(text: string): number[] {
  return gpt2Encode(text, AS_TEXT);
}

export class Gpt2Tokenizer implements TextTokenizer {
  readonly kind = 'gpt2' as const;
  /** 'used': the GPT-2 id of each dense id, strictly increasing; null for 'full'. */
  readonly ids: readonly number[] | null;
  private readonly dense: Map<number, number> | null;

  private constructor(ids: readonly number[] | null) {
    this.ids = ids === null ? null : Object.freeze([...ids]);
    this.dense = ids === null ? null : new Map(ids.map((g, i) => [g, i]));
  }

  static full(): Gpt2Tokenizer {
    return new Gpt2Tokenizer(null);
  }

  /** The 'used' vocabulary from the GPT-2 ids in `gpt2`; refuses one with fewer than 2 ids (nothing to predict). */
  static usedBy(gpt2: Iterable<number>): Gpt2Tokenizer {
    const set = new Set<number>(gpt2);
    return Gpt2Tokenizer.fromIds([...set].sort((a, b) => a - b));
  }

  /** A 'used' vocabulary as stored (tokenizer.json): strictly increasing GPT-2 ids, at least 2. */
  static fromIds(ids: readonly unknown[]): Gpt2Tokenizer {
    return new Gpt2Tokenizer(checkGpt2Ids(ids));
  }

  get vocab(): 'full' | 'used' {
    return this.ids === null ? 'full' : 'used';
  }

  get vocabSize(): number {
    return this.ids === null ? GPT2_VOCAB : this.ids.length;
  }

  /** Token ids of `text`; with 'used', a GPT-2 token the vocabulary lacks is an error that names it. */
  encode(text: string): Uint32Array {
    return this.fromGpt2(gpt2Ids(text));
  }

  /** Dense ids of GPT-2 ids (identity for 'full'). */
  fromGpt2(gpt2: readonly number[]): Uint32Array {
    const out = Uint32Array.from(gpt2);
    const dense = this.dense;
    if (dense === null) return out;
    for (let i = 0; i < out.length; i++) {
      const d = dense.get(out[i]);
      if (d === undefined) {
        throw new Error(
          `Gpt2Tokenizer: GPT-2 token ${out[i]} (${JSON.stringify(gpt2Decode([out[i]]))}) at index ${i} is not in this run's 'used' vocabulary`,
        );
      }
      out[i] = d;
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    const n = this.vocabSize;
    const gpt2 = new Array<number>(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= n) throw new Error(`Gpt2Tokenizer: token id ${id} at index ${i} is out of range [0, ${n})`);
      gpt2[i] = this.ids === null ? id : this.ids[id];
    }
    return gpt2Decode(gpt2);
  }

  /** `{"type":"gpt2","vocab":"full"}` or `{"type":"gpt2","vocab":"used","ids":[...]}` (docs/deployment.md). */
  toJSON(): string {
    return JSON.stringify(this.ids === null ? { type: 'gpt2', vocab: 'full' } : { type: 'gpt2', vocab: 'used', ids: this.ids });
  }
}
