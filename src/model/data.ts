// Token data: train/val split (nanoGPT), a deterministic batch sampler keyed by (seed, step, micro) that every
// machine reproduces exactly (32-bit integer hashing only, no Math.random, no float arithmetic), and evenly spaced
// evaluation windows.
import type { TextTokenizer } from './text-tokenizer';

export interface Batch {
  /** [B*T] token ids, row r = tokens[o_r .. o_r+T) */
  inputs: Uint32Array;
  /** [B*T] next-token targets, row r = tokens[o_r+1 .. o_r+T+1) */
  targets: Uint32Array;
}

export class Dataset {
  constructor(
    readonly train: Uint32Array,
    readonly val: Uint32Array,
    readonly tokenizer?: TextTokenizer,
  ) {}

  /** First (1 - valFraction) of the tokens train, the rest val: `n_train = floor(n * (1 - valFraction))` like nanoGPT. */
  static fromText(text: string, tokenizer: TextTokenizer, opts: { valFraction?: number } = {}): Dataset {
    const { train, val } = splitTokens(tokenizer.encode(text), opts.valFraction ?? 0.1);
    return new Dataset(train, val, tokenizer);
  }
}

/** nanoGPT's split: `n_train = floor(n * (1 - valFraction))` tokens train, the rest validate (copies). */
export function splitTokens(tokens: Uint32Array, valFraction: number): { train: Uint32Array; val: Uint32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new Error(`Dataset: valFraction must be in [0, 1), got ${valFraction}`);
  const nTrain = Math.floor(tokens.length * (1 - valFraction));
  return { train: tokens.slice(0, nTrain), val: tokens.slice(nTrain) };
}

// ------------------------------------------------------------------------------------------- hashing

/** Murmur3 fmix32-style finaliser (a bijection on u32 with full avalanche). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function checkKey(what: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`sampleBatch: ${what} must be a non-negative safe integer, got ${v}`);
}

/**
 * Counter-based hash of a tuple of non-negative safe integers -> u32. Each key is absorbed as two 32-bit words
 * (low, high), so keys up to 2^53 are all distinct inputs. Pure integer math: identical on every JS engine.
 */
export function hashKeys(keys: readonly number[]): number {
  let h = 0x243f6a88; // pi
  for (const k of keys) {
    const lo = (k % 0x100000000) >>> 0;
    const hi = Math.floor(k / 0x100000000) >>> 0;
    h = mix32((h + 0x9e3779b9) ^ lo);
    h = mix32((h + 0x7f4a7c15) ^ hi);
  }
  return h;
}

/** Unbiased integer in [0, n) for n <= 2^32, by rejection on the counter `attempt`. */
function uniformBelow(n: number, keys: number[]): number {
  if (n === 0x100000000) return hashKeys(keys.concat(0));
  const limit = 0x100000000 - (0x100000000 % n); // multiple of n
  for (let attempt = 0; ; attempt++) {
    const h = hashKeys(keys.concat(attempt));
    if (h < limit) return h % n;
  }
}

/** Offset of row `row` of the batch keyed by (seed, step, micro): uniform in [0, tokens - T - 1]. */
export function sampleOffset(nTokens: number, T: number, seed: number, step: number, micro: number, row: number): number {
  const range = nTokens - T; // offsets 0 .. nTokens-T-1 (nanoGPT: randint(len(data) - block_size))
  if (range > 0x100000000) throw new Error(`sampleBatch: ${nTokens} tokens is more than this sampler supports`);
  return uniformBelow(range, [seed, step, micro, row]);
}

function checkBT(fn: string, nTokens: number, B: number, T: number): void {
  if (!Number.isSafeInteger(B) || B < 1) throw new Error(`${fn}: B must be a positive integer, got ${B}`);
  if (!Number.isSafeInteger(T) || T < 1) throw new Error(`${fn}: T must be a positive integer, got ${T}`);
  if (nTokens < T + 1) throw new Error(`${fn}: need at least T+1 = ${T + 1} tokens, have ${nTokens}`);
}

function fillRow(tokens: Uint32Array, o: number, T: number, r: number, out: Batch): void {
  out.inputs.set(tokens.subarray(o, o + T), r * T);
  out.targets.set(tokens.subarray(o + 1, o + T + 1), r * T);
}

/**
 * Training batch for (seed, step, micro): B rows at independent uniform offsets. The same keys give the same batch
 * on any machine; any change of seed, step or micro index gives an independent draw.
 */
export function sampleBatch(tokens: Uint32Array, opts: { seed: number; step: number; micro: number; B: number; T: number }): Batch {
  const { seed, step, micro, B, T } = opts;
  checkBT('sampleBatch', tokens.length, B, T);
  checkKey('seed', seed);
  checkKey('step', step);
  checkKey('micro', micro);
  const out: Batch = { inputs: new Uint32Array(B * T), targets: new Uint32Array(B * T) };
  for (let r = 0; r < B; r++) fillRow(tokens, sampleOffset(tokens.length, T, seed, step, micro, r), T, r, out);
  return out;
}

/**
 * Deterministic validation batches: K = nb*B windows at evenly spaced offsets from 0 to the last possible one,
 * `o_k = floor(k * (n - T - 1) / (K - 1))`. nb = min(maxBatches, number of batches of non-overlapping windows
 * that fit), at least 1, so windows never overlap unless the set holds fewer than B of them.
 */
export function evalBatches(tokens: Uint32Array, opts: { B: number; T: number; maxBatches: number }): Batch[] {
  const { B, T, maxBatches } = opts;
  checkBT('evalBatches', tokens.length, B, T);
  if (!Number.isSafeInteger(maxBatches) || maxBatches < 1) throw new Error(`evalBatches: maxBatches must be a positive integer, got ${maxBatches}`);
  const fits = Math.floor(Math.floor((tokens.length - 1) / T) / B);
  const nb = Math.max(1, Math.min(maxBatches, fits));
  const K = nb * B;
  const last = tokens.length - T - 1;
  const batches: Batch[] = [];
  for (let b = 0; b < nb; b++) {
    const out: Batch = { inputs: new Uint32Array(B * T), targets: new Uint32Array(B * T) };
    for (let r = 0; r < B; r++) {
      const k = b * B + r;
      const o = K === 1 ? 0 : Math.floor((k * last) / (K - 1));
      fillRow(tokens, o, T, r, out);
    }
    batches.push(out);
  }
  return batches;
}
