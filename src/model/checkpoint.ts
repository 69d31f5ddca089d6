// GPT-2 checkpoints as safetensors with Hugging Face GPT2LMHeadModel tensor names and layouts (Conv1D [in, out]).
// The config lives in __metadata__ as decimal strings, plus "format": "pt" (what transformers expects).
// The reader also takes files written by other frameworks: HF's extra attention buffers and a stored (tied)
// lm_head.weight are ignored, tensor names without the "transformer." prefix (GPT2Model / the hub's gpt2 file)
// are accepted, and a config missing from metadata is inferred from shapes, except n_head, which cannot be.
// A model with a learned bottleneck also stores its projections under their own names (bottleneck.<l>.down/up.*)
// and the bottleneck in __metadata__ as JSON ("bottleneck": {"width", "passthrough", "after"}); HF's
// GPT2LMHeadModel.from_pretrained / load_state_dict(strict=False) skips those tensors, so it loads the blocks but
// not the model: without the projections the layers after a boundary read the wrong residual stream.
import { bottleneckConfigSchema, modelParamSpecs, validateBottleneck, type BottleneckConfig } from './bottleneck-config';
import { validateConfig, type GPTConfig } from './config';
import { decodeSafetensors, encodeSafetensors, type StTensor } from './safetensors';
import { gpt2VocabSize } from './gpt2-vocab';
import { CharTokenizer } from './tokenizer';

export interface Checkpoint {
  config: GPTConfig;
  /** The model's learned bottleneck (absent: none). */
  bottleneck?: BottleneckConfig;
  params: Map<string, Float32Array>;
  /** Tokenizer JSON (TextTokenizer.toJSON(): char or gpt2) */
  tokenizer?: string;
  /** Other __metadata__ entries (everything except the config fields, "format" and "tokenizer"). */
  extra?: Record<string, string>;
}

const CONFIG_KEYS = ['n_layer', 'n_head', 'n_embd', 'vocab_size', 'block_size'] as const;
const BOTTLENECK_KEY = 'bottleneck';
const RESERVED_KEYS = new Set<string>([...CONFIG_KEYS, 'format', 'tokenizer', BOTTLENECK_KEY]);
const WTE = 'transformer.wte.weight';
const WPE = 'transformer.wpe.weight';
const LM_HEAD = 'lm_head.weight';
/** Non-parameter buffers HF GPT-2 checkpoints may carry (causal mask and its fill value). */
const HF_BUFFER = /^transformer\.h\.(\d+)\.attn\.(bias|masked_bias)$/;

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A stored tokenizer (char, or GPT-2 BPE: src/model/text-data.ts tokenizerFromJSON) that fits the model's vocabulary. */
function checkTokenizer(where: string, tok: string, vocab: number): void {
  let n: number;
  try {
    const o: unknown = JSON.parse(tok);
    const gpt2 = o !== null && typeof o === 'object' && (o as Record<string, unknown>).type === 'gpt2';
    n = gpt2 ? gpt2VocabSize(o as Record<string, unknown>) : CharTokenizer.fromJSON(tok).vocabSize;
  } catch (e) {
    throw new Error(`${where}: tokenizer is invalid: ${(e as Error).message}`, { cause: e });
  }
  if (n > vocab) throw new Error(`${where}: tokenizer has ${n} tokens but vocab_size is ${vocab}`);
}

export function encodeCheckpoint(ck: Checkpoint): Uint8Array {
  const config = validateConfig({ ...ck.config });
  let bottleneck: BottleneckConfig | undefined;
  try {
    bottleneck = ck.bottleneck && validateBottleneck(config, ck.bottleneck);
  } catch (e) {
    throw new Error(`encodeCheckpoint: ${(e as Error).message}`, { cause: e });
  }
  const specs = modelParamSpecs(config, bottleneck);
  const known = new Set(specs.map((s) => s.name));
  for (const name of ck.params.keys()) {
    if (!known.has(name)) throw new Error(`encodeCheckpoint: unexpected parameter "${name}" (not in modelParamSpecs for this config and bottleneck)`);
  }
  const tensors: StTensor[] = specs.map((s) => {
    const data = ck.params.get(s.name);
    if (!data) throw new Error(`encodeCheckpoint: parameter "${s.name}" is missing`);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`encodeCheckpoint: parameter "${s.name}" has ${data.length} values, shape [${s.shape}] needs ${n}`);
    return { name: s.name, shape: s.shape, data };
  });
  const metadata: Record<string, string> = Object.create(null);
  for (const k of CONFIG_KEYS) metadata[k] = String(config[k]);
  metadata.format = 'pt';
  if (bottleneck)
    metadata[BOTTLENECK_KEY] = JSON.stringify({ width: bottleneck.width, passthrough: bottleneck.passthrough, after: bottleneck.after });
  if (ck.tokenizer !== undefined) {
    checkTokenizer('encodeCheckpoint', ck.tokenizer, config.vocab_size);
    metadata.tokenizer = ck.tokenizer;
  }
  for (const [k, v] of Object.entries(ck.extra ?? {})) {
    if (RESERVED_KEYS.has(k)) throw new Error(`encodeCheckpoint: extra metadata key "${k}" is reserved`);
    if (typeof v !== 'string') throw new Error(`encodeCheckpoint: extra metadata "${k}" must be a string`);
    metadata[k] = v;
  }
  return encodeSafetensors(tensors, metadata);
}

function parsePositiveInt(key: string, v: string): number {
  if (!/^[1-9][0-9]*$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new Error(`decodeCheckpoint: metadata ${key} must be a positive integer string, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

export function decodeCheckpoint(bytes: Uint8Array): Checkpoint {
  const { tensors: raw, metadata } = decodeSafetensors(bytes);

  // Files saved from GPT2Model (e.g. the hub's gpt2/model.safetensors) have no "transformer." prefix.
  let tensors = raw;
  const names = [...raw.keys()];
  if (!names.some((n) => n.startsWith('transformer.')) && raw.has('wte.weight')) {
    tensors = new Map(names.map((n) => [n === LM_HEAD ? n : 'transformer.' + n, raw.get(n)!]));
  }

  // Config: metadata first; anything missing except n_head is inferred from the tensor shapes.
  const partial: Partial<GPTConfig> = {};
  for (const k of CONFIG_KEYS) if (k in metadata) partial[k] = parsePositiveInt(k, metadata[k]);
  const missing = CONFIG_KEYS.filter((k) => partial[k] === undefined);
  if (missing.includes('n_head')) {
    throw new Error(
      'decodeCheckpoint: metadata has no n_head, and the number of attention heads cannot be inferred from tensor shapes; ' +
        'add it to __metadata__ (e.g. "n_head": "12" for GPT-2 small)',
    );
  }
  if (missing.length > 0) {
    const need = (name: string, key: string) => {
      const t = tensors.get(name);
      if (!t || t.shape.length !== 2) {
        throw new Error(
          `decodeCheckpoint: metadata has no ${key} and it cannot be inferred: tensor "${name}" is ${t ? `shape [${t.shape}]` : 'missing'}`,
        );
      }
      return t.shape;
    };
    if (partial.vocab_size === undefined) partial.vocab_size = need(WTE, 'vocab_size')[0];
    if (partial.n_embd === undefined) partial.n_embd = need(WTE, 'n_embd')[1];
    if (partial.block_size === undefined) partial.block_size = need(WPE, 'block_size')[0];
    if (partial.n_layer === undefined) {
      let n = 0;
      while (tensors.has(`transformer.h.${n}.ln_1.weight`)) n++;
      if (n === 0) throw new Error('decodeCheckpoint: metadata has no n_layer and it cannot be inferred: no transformer.h.0.* tensors');
      partial.n_layer = n;
    }
  }
  let config: GPTConfig;
  try {
    config = validateConfig(partial as GPTConfig);
  } catch (e) {
    throw new Error(`decodeCheckpoint: ${(e as Error).message}`, { cause: e });
  }

  let bottleneck: BottleneckConfig | undefined;
  if (metadata[BOTTLENECK_KEY] !== undefined) {
    try {
      bottleneck = validateBottleneck(config, bottleneckConfigSchema.parse(JSON.parse(metadata[BOTTLENECK_KEY])));
    } catch (e) {
      throw new Error(`decodeCheckpoint: metadata bottleneck is invalid: ${(e as Error).message}`, { cause: e });
    }
  }

  // Every block has 12 tensors: a config with more blocks than the file holds is refused (naming the first missing
  // block) before its parameter specs are listed, which for an n_layer of 4294967296 would not fit in memory.
  if (config.n_layer * 12 > tensors.size) {
    let k = 0;
    while (k < config.n_layer && tensors.has(`transformer.h.${k}.ln_1.weight`)) k++;
    throw new Error(
      `decodeCheckpoint: tensor "transformer.h.${k}.ln_1.weight" is missing (n_layer ${config.n_layer}, the file has ${tensors.size} tensors)`,
    );
  }
  const params = new Map<string, Float32Array>();
  const specs = modelParamSpecs(config, bottleneck);
  const expected = new Set(specs.map((s) => s.name));
  for (const s of specs) {
    const t = tensors.get(s.name);
    if (!t) throw new Error(`decodeCheckpoint: tensor "${s.name}" is missing`);
    if (!sameShape(t.shape, s.shape)) throw new Error(`decodeCheckpoint: tensor "${s.name}" has shape [${t.shape}], expected [${s.shape}]`);
    params.set(s.name, t.data);
  }
  for (const [name, t] of tensors) {
    if (expected.has(name)) continue;
    if (name === LM_HEAD) {
      const want = [config.vocab_size, config.n_embd];
      if (!sameShape(t.shape, want))
        throw new Error(`decodeCheckpoint: tensor "${LM_HEAD}" has shape [${t.shape}], expected [${want}] (tied to wte)`);
      continue;
    }
    const m = HF_BUFFER.exec(name);
    if (m && Number(m[1]) < config.n_layer) continue;
    throw new Error(`decodeCheckpoint: unexpected tensor "${name}" (not a GPT-2 parameter for n_layer=${config.n_layer})`);
  }

  const ck: Checkpoint = { config, params };
  if (bottleneck) ck.bottleneck = bottleneck;
  if (metadata.tokenizer !== undefined) {
    checkTokenizer('decodeCheckpoint', metadata.tokenizer, config.vocab_size);
    ck.tokenizer = metadata.tokenizer;
  }
  const extra: Record<string, string> = {};
  let hasExtra = false;
  for (const [k, v] of Object.entries(metadata)) {
    if (RESERVED_KEYS.has(k)) continue;
    Object.defineProperty(extra, k, { value: v, enumerable: true, writable: true, configurable: true });
    hasExtra = true;
  }
  if (hasExtra) ck.extra = extra;
  return ck;
}
