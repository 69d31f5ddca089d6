// The coordinator page's dataset (docs/deployment.md "Your own data"; /api/config itself is serve-client.ts): the one
// the person picks: the default (tinyshakespeare, character tokenizer), the served one, or a text file uploaded with
// POST /api/data. What the page needs of a dataset: the vocabulary size (the run's model), the tokenizer (samples)
// and the validation split (the end-of-run validation loss).
import { CharTokenizer } from '../model/tokenizer';
import { Dataset } from '../model/data';
import { bytesToTokens } from '../model/token-hash';
import type { TextTokenizer } from '../model/text-data';
import { dataSpecSchema, type DataSpec } from '../protocol/run-config';
import { CORPUS_URL } from './swarm-params';

export type DataChoice = 'default' | 'served' | 'upload';

/** Uploads a text file as a dataset (POST /api/data); throws with the server's own message for a refusal. */
export async function uploadDataset(file: Blob & { name?: string }, tokenizer: 'char' | 'gpt2', origin: string = location.origin): Promise<DataSpec> {
  const name = (file.name ?? 'upload.txt').replace(/[^\w.-]+/g, '_').slice(0, 200) || 'upload.txt';
  const q = new URLSearchParams({ name, tokenizer, ...(tokenizer === 'gpt2' ? { vocab: 'used' } : {}) });
  const res = await fetch(`${origin}/api/data?${q}`, { method: 'POST', body: file, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  const text = await res.text();
  if (!res.ok) throw new Error(`upload refused (HTTP ${res.status}): ${text.slice(0, 300)}`);
  const spec = dataSpecSchema.safeParse(JSON.parse(text));
  if (!spec.success || !spec.data.url) throw new Error('upload: the server answered without a dataset URL');
  return spec.data;
}

/** A run's dataset as the page uses it. */
export interface PageDataset {
  /** The run config's `data` (null: the default corpus). */
  spec: DataSpec | null;
  tokenizer: TextTokenizer;
  /** The validation split, fetched when first asked for. */
  val(): Promise<Uint32Array>;
}

/** The default corpus: tinyshakespeare from public/, character tokenizer, the last 10% for validation (as the CLI). */
export async function defaultDataset(): Promise<PageDataset> {
  const res = await fetch(CORPUS_URL);
  if (!res.ok) throw new Error(`corpus ${CORPUS_URL}: HTTP ${res.status}`);
  const text = await res.text();
  const tokenizer = CharTokenizer.fromCorpus(text);
  let val: Uint32Array | null = null;
  return { spec: null, tokenizer, val: async () => (val ??= Dataset.fromText(text, tokenizer, { valFraction: 0.1 }).val) };
}

/** A served dataset (its `url` names where train.u32, val.u32 and tokenizer.json are). */
export async function servedDataset(spec: DataSpec, origin: string = location.origin): Promise<PageDataset> {
  if (!spec.url) throw new Error(`dataset ${spec.name}: no URL to fetch it from`);
  const base = new URL(spec.url.endsWith('/') ? spec.url : `${spec.url}/`, `${origin}/`);
  const get = async (name: string) => {
    const res = await fetch(new URL(name, base));
    if (!res.ok) throw new Error(`dataset ${spec.name}: ${name}: HTTP ${res.status}`);
    return res;
  };
  // Imported when needed: text-data.ts brings GPT-2's BPE ranks (~0.5 MB) that a default run never uses.
  const { tokenizerFromJSON } = await import('../model/text-data');
  const tokenizer = tokenizerFromJSON(await (await get('tokenizer.json')).text());
  let val: Promise<Uint32Array> | null = null;
  return {
    spec,
    tokenizer,
    val: () => (val ??= get('val.u32').then(async (r) => bytesToTokens(new Uint8Array(await r.arrayBuffer()), `${spec.name} val.u32`))),
  };
}
