// What every tokenizer a run can name does (docs/deployment.md, "Your own data"): the character tokenizer
// (tokenizer.ts) and GPT-2 BPE (bpe-tokenizer.ts). Its own module so that data.ts and text-data.ts share it
// without importing each other.

export interface TextTokenizer {
  readonly kind: 'char' | 'gpt2';
  readonly vocabSize: number;
  /** Token ids of `s`; throws, naming the piece, for text the vocabulary cannot express. */
  encode(s: string): Uint32Array;
  /** Throws for an id outside [0, vocabSize). */
  decode(ids: ArrayLike<number>): string;
  /** `{"type":"char","chars":[...]}` | `{"type":"gpt2","vocab":"full"}` | `{"type":"gpt2","vocab":"used","ids":[...]}` */
  toJSON(): string;
}
