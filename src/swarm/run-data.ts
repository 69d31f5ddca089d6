// A run's token ids, for a peer (tab or Node) and for the coordinator (docs/deployment.md, "Your own data"):
//   - a run without `data` trains on tinyshakespeare, character tokenizer (every run before datasets existed): the
//     caller's own text (`--data FILE`, the default corpus) or the corpus fetched from `base`;
//   - a run with `data`: the caller's own file, tokenized here and checked against the run's hashes, or else
//     `train.u32` (and `val.u32`, `tokenizer.json`) fetched from `data.url`, checked the same way.
// Every mismatch refuses (DataRefusal) with a message that names the file or URL and both hashes: a peer that
// trained on other bytes would poison the run's gradients without anyone noticing.
import type { TextTokenizer } from '../model/text-tokenizer';
import { bytesToTokens, tokensSha256 } from '../model/token-hash';
import { CharTokenizer } from '../model/tokenizer';
import type { DataSpec, RunConfig } from '../protocol/run-config';

/** Where a run's tokens come from, besides the run itself. */
export interface DataSource {
  /** A local file's text (`--data FILE`) and its path (for messages). Used instead of fetching when given. */
  file?: { path: string; text: string };
  /** What relative URLs resolve against: the page's origin, or `--serve URL`. */
  base?: string;
  /** The default corpus' text (Node: read from public/); absent: fetched from `base` + DEFAULT_CORPUS_PATH. */
  defaultText?: () => string | Promise<string>;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
}

export interface RunSplits {
  train: Uint32Array;
  val: Uint32Array;
  tokenizer: TextTokenizer;
}

/** The default corpus, served from public/ by every page host. */
export const DEFAULT_CORPUS_PATH = '/tinyshakespeare.txt';
const VAL_FRACTION = 0.1;

export class DataRefusal extends Error {
  override name = 'DataRefusal';
}

/** The run's train split (what first- and last-stage peers sample batches from). */
export async function runTokens(run: RunConfig, source: DataSource): Promise<Uint32Array> {
  return (await load(run, source, false)).train;
}

/** Both splits and the tokenizer (the coordinator: validation loss and text samples). */
export async function runSplits(run: RunConfig, source: DataSource): Promise<RunSplits> {
  const s = await load(run, source, true);
  if (!s.val || !s.tokenizer) throw new Error('runSplits: internal: splits missing');
  return { train: s.train, val: s.val, tokenizer: s.tokenizer };
}

interface Loaded {
  train: Uint32Array;
  val?: Uint32Array;
  tokenizer?: TextTokenizer;
}

async function load(run: RunConfig, source: DataSource, all: boolean): Promise<Loaded> {
  const spec = run.data;
  if (!spec) return defaultSplits(run, source);
  if (source.file) return fromText(run, spec, source.file);
  if (spec.url === undefined) {
    throw new DataRefusal(
      `run ${run.runId} trains on "${spec.name}" (${spec.tokenizer}, train sha256 ${spec.trainSha256}) and names no URL for it: ` +
        `give this peer the same file (--data FILE --tokenizer ${spec.tokenizer}${spec.vocab ? ` --vocab ${spec.vocab}` : ''})`,
    );
  }
  return fromUrl(run, spec, spec.url, source, all);
}

/** tinyshakespeare (or the file the caller gave for a run without `data`), character tokenizer, nanoGPT split. */
async function defaultSplits(run: RunConfig, source: DataSource): Promise<Loaded> {
  let text: string;
  let where: string;
  if (source.file) {
    ({ text, path: where } = source.file);
  } else if (source.defaultText) {
    text = await source.defaultText();
    where = 'the default corpus';
  } else {
    where = resolve(DEFAULT_CORPUS_PATH, source.base, run);
    text = await (await get(where, source)).text();
  }
  const { tokenizer, tokens } = await charTokens(text);
  if (tokenizer.vocabSize !== run.model.vocab_size) {
    throw new DataRefusal(
      `${where}: its ${tokenizer.vocabSize} characters are not the run's vocabulary of ${run.model.vocab_size}: ` +
        `run ${run.runId} trains on another text (give the coordinator's --data file)`,
    );
  }
  const nTrain = Math.floor(tokens.length * (1 - VAL_FRACTION));
  return { train: tokens.slice(0, nTrain), val: tokens.slice(nTrain), tokenizer };
}

/** The caller's own file, prepared as the coordinator did, and checked against the run's hashes. */
async function fromText(run: RunConfig, spec: DataSpec, file: { path: string; text: string }): Promise<Loaded> {
  // Lazily: the BPE ranks (~0.5 MB) load only where a run uses them.
  const { prepareTextData } = await import('../model/text-data');
  let d;
  try {
    d = await prepareTextData(file.text, { tokenizer: spec.tokenizer, vocab: spec.vocab, name: spec.name, window: run.T });
  } catch (e) {
    throw new DataRefusal(`${file.path}: ${(e as Error).message}`, { cause: e });
  }
  const mismatch: string[] = [];
  if (d.spec.trainSha256 !== spec.trainSha256 || d.train.length !== spec.trainTokens)
    mismatch.push(`train sha256 ${d.spec.trainSha256} (${d.train.length} tokens), the run's ${spec.trainSha256} (${spec.trainTokens} tokens)`);
  if (d.spec.valSha256 !== spec.valSha256 || d.val.length !== spec.valTokens)
    mismatch.push(`val sha256 ${d.spec.valSha256} (${d.val.length} tokens), the run's ${spec.valSha256} (${spec.valTokens} tokens)`);
  if (mismatch.length > 0) {
    throw new DataRefusal(
      `${file.path} (${tokenizerLabel(spec)}) is not run ${run.runId}'s dataset "${spec.name}": ${mismatch.join('; ')}. ` +
        `Give the coordinator's file and tokenizer`,
    );
  }
  checkVocab(run, d.tokenizer, file.path);
  return { train: d.train, val: d.val, tokenizer: d.tokenizer };
}

async function fromUrl(run: RunConfig, spec: DataSpec, url: string, source: DataSource, all: boolean): Promise<Loaded> {
  const dir = resolve(url.endsWith('/') ? url : `${url}/`, source.base, run);
  const train = await split(new URL('train.u32', dir).href, spec.trainSha256, spec.trainTokens, source);
  if (!all) return { train };
  const tokUrl = new URL('tokenizer.json', dir).href;
  const [val, tokJson] = await Promise.all([
    split(new URL('val.u32', dir).href, spec.valSha256, spec.valTokens, source),
    get(tokUrl, source).then((r) => r.text()),
  ]);
  const { tokenizerFromJSON } = await import('../model/text-data');
  let tokenizer: TextTokenizer;
  try {
    tokenizer = tokenizerFromJSON(tokJson);
  } catch (e) {
    throw new DataRefusal(`${tokUrl}: ${(e as Error).message}`, { cause: e });
  }
  if (tokenizer.kind !== spec.tokenizer) throw new DataRefusal(`${tokUrl}: a ${tokenizer.kind} tokenizer, the run names ${spec.tokenizer}`);
  checkVocab(run, tokenizer, tokUrl);
  return { train, val, tokenizer };
}

/** One split's ids from `url`, checked against the run's length and sha256. */
async function split(url: string, sha256: string, count: number, source: DataSource): Promise<Uint32Array> {
  const bytes = new Uint8Array(await (await get(url, source)).arrayBuffer());
  let tokens: Uint32Array;
  try {
    tokens = bytesToTokens(bytes, url);
  } catch (e) {
    throw new DataRefusal((e as Error).message, { cause: e });
  }
  const got = await tokensSha256(tokens);
  if (got !== sha256 || tokens.length !== count) {
    throw new DataRefusal(
      `${url}: sha256 ${got} (${tokens.length} tokens), the run's is ${sha256} (${count} tokens): refusing to train on other data`,
    );
  }
  return tokens;
}

function checkVocab(run: RunConfig, tokenizer: TextTokenizer, where: string): void {
  if (tokenizer.vocabSize !== run.model.vocab_size)
    throw new DataRefusal(`${where}: a vocabulary of ${tokenizer.vocabSize}, run ${run.runId}'s model has vocab_size ${run.model.vocab_size}`);
}

async function get(url: string, source: DataSource): Promise<Response> {
  const f = source.fetch ?? fetch;
  let res: Response;
  try {
    res = await f(url);
  } catch (e) {
    throw new DataRefusal(`${url}: cannot fetch (${(e as Error).message})`, { cause: e });
  }
  if (!res.ok) throw new DataRefusal(`${url}: HTTP ${res.status}`);
  return res;
}

/** `url` (absolute, or a path on the base's host) as an absolute URL; a relative one without a base is refused. */
function resolve(url: string, base: string | undefined, run: RunConfig): string {
  try {
    return new URL(url, base).href;
  } catch {
    throw new DataRefusal(
      base === undefined
        ? `run ${run.runId}'s data is at "${url}", relative to the server it came from: give --serve URL (or --data FILE)`
        : `run ${run.runId}'s data URL "${url}" does not resolve against ${base}`,
    );
  }
}

function tokenizerLabel(spec: DataSpec): string {
  return spec.tokenizer === 'gpt2' ? `gpt2, vocab ${spec.vocab ?? 'used'}` : 'char';
}

/** Characters per slice between yields: a page tokenizing 1 MB keeps each main-thread task short. */
const SLICE = 1 << 17;

/**
 * CharTokenizer.fromCorpus + encode, a slice at a time with a macrotask between slices, so a tab joining a run
 * never holds its main thread for the whole corpus (the contributor page's long-task budget).
 */
export async function charTokens(text: string): Promise<{ tokenizer: CharTokenizer; tokens: Uint32Array }> {
  const seen = new Set<string>();
  for (let at = 0; at < text.length;) {
    const end = sliceEnd(text, at);
    for (const ch of text.slice(at, end)) seen.add(ch);
    at = end;
    await yieldTask();
  }
  if (seen.size === 0) throw new DataRefusal('the corpus is empty');
  const tokenizer = CharTokenizer.fromChars([...seen].sort((a, b) => (a.codePointAt(0) ?? 0) - (b.codePointAt(0) ?? 0)));
  const parts: Uint32Array[] = [];
  let n = 0;
  for (let at = 0; at < text.length;) {
    const end = sliceEnd(text, at);
    const p = tokenizer.encode(text.slice(at, end));
    parts.push(p);
    n += p.length;
    at = end;
    await yieldTask();
  }
  const tokens = new Uint32Array(n);
  let o = 0;
  for (const p of parts) {
    tokens.set(p, o);
    o += p.length;
  }
  return { tokenizer, tokens };
}

/** The end of the slice from `at`, never between the two halves of a surrogate pair. */
function sliceEnd(text: string, at: number): number {
  let end = Math.min(text.length, at + SLICE);
  const c = text.charCodeAt(end - 1);
  if (end < text.length && c >= 0xd800 && c <= 0xdbff) end++;
  return end;
}

function yieldTask(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}
