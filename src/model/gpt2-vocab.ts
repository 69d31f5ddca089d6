// GPT-2 vocabulary facts without the BPE ranks (checkpoints check a stored tokenizer with them; the pages that
// write checkpoints need not load 0.5 MB of merges for that).

/** r50k_base: 50,000 merges + 256 bytes + <|endoftext|>. */
export const GPT2_VOCAB = 50257;

/** A 'used' vocabulary's GPT-2 ids, checked: at least 2, integers in [0, GPT2_VOCAB), strictly increasing. */
export function checkGpt2Ids(ids: readonly unknown[]): number[] {
  if (ids.length < 2)
    throw new Error(`Gpt2Tokenizer: a 'used' vocabulary needs at least 2 ids, got ${ids.length} (use vocab 'full' or a longer text)`);
  let prev = -1;
  const out: number[] = [];
  ids.forEach((g, i) => {
    if (typeof g !== 'number' || !Number.isInteger(g) || g < 0 || g >= GPT2_VOCAB)
      throw new Error(`Gpt2Tokenizer: id ${i} (${JSON.stringify(g)}) is not a GPT-2 id in [0, ${GPT2_VOCAB})`);
    if (g <= prev) throw new Error(`Gpt2Tokenizer: id ${i} (${g}) is not in strictly increasing order`);
    prev = g;
    out.push(g);
  });
  return out;
}

/** The vocabulary size a gpt2 tokenizer JSON object names (`{"type":"gpt2","vocab":"full"|"used",...}`); throws if malformed. */
export function gpt2VocabSize(o: Record<string, unknown>): number {
  if (o.vocab === 'full') return GPT2_VOCAB;
  if (o.vocab !== 'used') throw new Error(`tokenizer JSON: gpt2 vocab must be "full" or "used", got ${JSON.stringify(o.vocab)}`);
  if (!Array.isArray(o.ids)) throw new Error('tokenizer JSON: gpt2 "used" needs "ids", an array of GPT-2 ids');
  return checkGpt2Ids(o.ids).length;
}
