// Shared CLI plumbing: the GPU runtime, corpus + tokenizer, checkpoints on disk, matmul tuning cache.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportTuning, importTuning } from '../gpu/autotune';
import { nodeRuntime } from '../gpu/node-runtime';
import type { Runtime } from '../gpu/runtime';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../model/checkpoint';
import { tokenizerFromJSON, type TextTokenizer } from '../model/text-data';
import { CharTokenizer } from '../model/tokenizer';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const defaultCorpus = join(repoRoot, 'public', 'tinyshakespeare.txt');
const tuningFile = join(repoRoot, '.cache', 'matmul-tuning.json');

/** The GPU runtime of a command; `f16` requests 'shader-f16' where the adapter has it (train --precision f16). */
export async function cliRuntime(opts: { f16?: boolean } = {}): Promise<Runtime> {
  const rt = await nodeRuntime({ f16: opts.f16 });
  if (existsSync(tuningFile)) {
    try {
      importTuning(rt, readFileSync(tuningFile, 'utf8'));
    } catch {
      // A stale or foreign cache is only an optimisation: retune.
    }
  }
  return rt;
}

export function saveTuning(rt: Runtime): void {
  mkdirSync(dirname(tuningFile), { recursive: true });
  writeFileSync(tuningFile, exportTuning(rt));
}

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export function loadCheckpointFile(path: string): Checkpoint {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new Error(`cannot read checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return decodeCheckpoint(bytes);
  } catch (e) {
    throw new Error(`checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export function saveCheckpointFile(path: string, ck: Checkpoint): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodeCheckpoint(ck));
}

/** The checkpoint's tokenizer, else one built from the corpus (which must then match the vocabulary size). */
export function tokenizerFor(ck: Checkpoint, corpusText: string | undefined): TextTokenizer {
  if (ck.tokenizer) return tokenizerFromJSON(ck.tokenizer);
  if (corpusText === undefined) throw new Error('the checkpoint has no tokenizer: pass --data with the corpus it was trained on');
  const tok = CharTokenizer.fromCorpus(corpusText);
  if (tok.vocabSize !== ck.config.vocab_size) {
    throw new Error(`the checkpoint has no tokenizer and the corpus gives ${tok.vocabSize} characters, not vocab_size ${ck.config.vocab_size}`);
  }
  return tok;
}
