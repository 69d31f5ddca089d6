// Node-only: reads the training corpus from disk (pages fetch `/tinyshakespeare.txt` from public/ instead).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_CORPUS_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'public', 'tinyshakespeare.txt');

/** The corpus as text (UTF-8, invalid bytes refused). */
export function loadCorpus(path: string = DEFAULT_CORPUS_PATH): string {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`loadCorpus: cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`loadCorpus: ${path} is not valid UTF-8`);
  }
}
