// What the swarm commands (coordinator, demo, peer) share in Node: the dataset flags and loader, and a sure exit.
import { basename, resolve } from 'node:path';
import { loadCorpus } from '../model/corpus-node';
import { Dataset } from '../model/data';
import type { TextTokenizer } from '../model/text-tokenizer';
import { CharTokenizer } from '../model/tokenizer';
import type { DataSpec } from '../protocol/run-config';
import type { DataSource } from '../swarm/run-data';
import { str, UsageError } from './args';
import { defaultCorpus, readText } from './engine';

/** `--data FILE --tokenizer char|gpt2 --vocab used|full` (coordinator, demo, peer). */
export const dataFlagOptions = {
  data: { type: 'string' },
  tokenizer: { type: 'string' },
  vocab: { type: 'string' },
} as const;

export const dataFlagsHelp = `  --data FILE         the run's text, UTF-8 (default: public/tinyshakespeare.txt); peers fetch it or bring the same file
  --tokenizer char    char (one token per character) or gpt2 (GPT-2 BPE, r50k)
  --vocab used        gpt2: used (only the text's tokens, renumbered: a small head) or full (all 50,257)`;

export interface DataChoice {
  /** Absent: the default corpus. */
  path?: string;
  tokenizer: 'char' | 'gpt2';
  /** gpt2 only (default 'used'). */
  vocab?: 'used' | 'full';
}

/** The dataset flags, checked. */
export function dataFromFlags(values: Record<string, unknown>): DataChoice {
  const tokenizer = str(values, 'tokenizer') ?? 'char';
  if (tokenizer !== 'char' && tokenizer !== 'gpt2') throw new UsageError(`--tokenizer: "${tokenizer}" is not char or gpt2`);
  const vocab = str(values, 'vocab');
  if (vocab !== undefined && vocab !== 'used' && vocab !== 'full') throw new UsageError(`--vocab: "${vocab}" is not used or full`);
  if (vocab !== undefined && tokenizer !== 'gpt2') throw new UsageError("--vocab is for --tokenizer gpt2 (char always uses the text's characters)");
  const path = str(values, 'data');
  return { ...(path !== undefined ? { path } : {}), tokenizer, ...(vocab ? { vocab } : {}) };
}

export interface Corpus {
  text: string;
  tokenizer: TextTokenizer;
  data: Dataset;
  /** The run's `data` (no url); absent for the default dataset (tinyshakespeare, char): such runs are as before. */
  spec?: DataSpec;
}

function isDefault(choice: DataChoice): boolean {
  return choice.tokenizer === 'char' && (choice.path === undefined || resolve(choice.path) === resolve(defaultCorpus));
}

/** The corpus the coordinator builds a run over (peers must use the same bytes: the run's DataSpec holds its hashes). */
export async function corpus(choice: DataChoice | string = { tokenizer: 'char' }): Promise<Corpus> {
  const c: DataChoice = typeof choice === 'string' ? { path: choice, tokenizer: 'char' } : choice;
  const text = c.path ? readText(c.path) : loadCorpus(defaultCorpus);
  if (isDefault(c)) {
    const tokenizer = CharTokenizer.fromCorpus(text);
    return { text, tokenizer, data: Dataset.fromText(text, tokenizer, { valFraction: 0.1 }) };
  }
  // Lazily: the BPE ranks load only for runs that use them.
  const { prepareTextData, TextDataError } = await import('../model/text-data');
  const path = c.path ?? defaultCorpus;
  try {
    // Window 1 here: buildRun checks the splits against the run's block size, naming --block-size.
    const d = await prepareTextData(text, { tokenizer: c.tokenizer, vocab: c.vocab, name: basename(path), window: 1 });
    return { text, tokenizer: d.tokenizer, data: new Dataset(d.train, d.val, d.tokenizer), spec: d.spec };
  } catch (e) {
    if (e instanceof TextDataError) throw new UsageError(`--data ${path}: ${e.message}`);
    throw e;
  }
}

/**
 * Where a Node peer gets a run's tokens (src/swarm/run-data.ts): its own `--data FILE` when given, else the run's
 * data.url (relative ones against `serveUrl`, the `--serve` URL), else the default corpus from public/.
 */
export function peerDataSource(choice: DataChoice, serveUrl?: string): DataSource {
  return {
    ...(choice.path !== undefined ? { file: { path: choice.path, text: readText(choice.path) } } : {}),
    ...(serveUrl !== undefined ? { base: serveUrl } : {}),
    defaultText: () => loadCorpus(defaultCorpus),
  };
}

/**
 * After a command has closed everything it opened: native libraries (node-datachannel's threads, a Dawn device
 * among several in one process) can hold a Node process for seconds to minutes after its event loop is empty.
 * A command that is done ends the process `ms` later with the exit code main() set.
 */
export function exitSoon(ms = 1500): void {
  setTimeout(() => process.exit(), ms);
}
