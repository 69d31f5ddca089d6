// Character-level tokenizer (nanoGPT shakespeare_char): the vocabulary is the corpus's unique characters (Unicode
// code points) sorted by code point; token id = index in that list.
import type { TextTokenizer } from './text-tokenizer';

export class CharTokenizer implements TextTokenizer {
  readonly kind = 'char' as const;
  /** One code point per entry, strictly increasing by code point. */
  readonly chars: readonly string[];
  private readonly index: Map<string, number>;

  private constructor(chars: string[]) {
    this.chars = Object.freeze(chars);
    this.index = new Map(chars.map((c, i) => [c, i]));
  }

  /** Builds the vocabulary from every code point that occurs in `corpus`. */
  static fromCorpus(corpus: string): CharTokenizer {
    const set = new Set<string>();
    for (const ch of corpus) set.add(ch);
    if (set.size === 0) throw new Error('CharTokenizer: corpus is empty');
    return new CharTokenizer([...set].sort((a, b) => codePoint(a) - codePoint(b)));
  }

  /** Builds a tokenizer from an explicit vocabulary (validated like fromJSON). */
  static fromChars(chars: readonly string[]): CharTokenizer {
    return new CharTokenizer(validateChars(chars));
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  encode(text: string): Uint32Array {
    const out = new Uint32Array(text.length);
    let n = 0;
    let pos = 0;
    for (const ch of text) {
      const id = this.index.get(ch);
      if (id === undefined) {
        const cp = codePoint(ch);
        throw new Error(
          `CharTokenizer: character ${JSON.stringify(ch)} (U+${cp.toString(16).toUpperCase().padStart(4, '0')}) at offset ${pos} is not in the vocabulary`,
        );
      }
      out[n++] = id;
      pos += ch.length;
    }
    return n === out.length ? out : out.slice(0, n);
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const ch = this.chars[id];
      if (!Number.isInteger(id) || ch === undefined) {
        throw new Error(`CharTokenizer: token id ${id} at index ${i} is out of range [0, ${this.chars.length})`);
      }
      s += ch;
    }
    return s;
  }

  /** `{"type":"char","chars":[...]}`: stored in checkpoints' metadata. */
  toJSON(): string {
    return JSON.stringify({ type: 'char', chars: this.chars });
  }

  static fromJSON(s: string): CharTokenizer {
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      throw new Error(`CharTokenizer.fromJSON: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('CharTokenizer.fromJSON: not a JSON object');
    const o = v as Record<string, unknown>;
    if (o.type !== 'char') throw new Error(`CharTokenizer.fromJSON: type must be "char", got ${JSON.stringify(o.type)}`);
    if (!Array.isArray(o.chars)) throw new Error('CharTokenizer.fromJSON: "chars" must be an array of single characters');
    return new CharTokenizer(validateChars(o.chars));
  }
}

function validateChars(chars: readonly unknown[]): string[] {
  if (chars.length === 0) throw new Error('CharTokenizer: vocabulary is empty');
  let prev = -1;
  const out: string[] = [];
  chars.forEach((c, i) => {
    if (typeof c !== 'string' || c.length === 0 || [...c].length !== 1) {
      throw new Error(`CharTokenizer: vocabulary entry ${i} (${JSON.stringify(c)}) is not a single character`);
    }
    const cp = codePoint(c);
    if (cp <= prev) throw new Error(`CharTokenizer: vocabulary entry ${i} (${JSON.stringify(c)}) is not in strictly increasing code point order`);
    prev = cp;
    out.push(c);
  });
  return out;
}

/** The code point of a one-character string. */
function codePoint(ch: string): number {
  const cp = ch.codePointAt(0);
  if (cp === undefined) throw new Error('CharTokenizer: an empty string is not a character');
  return cp;
}
