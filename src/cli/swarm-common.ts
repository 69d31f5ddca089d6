// What the swarm commands (coordinator, demo, peer) share in Node: the corpus and a sure exit.
import { loadCorpus } from '../model/corpus-node';
import { Dataset } from '../model/data';
import { CharTokenizer } from '../model/tokenizer';
import { defaultCorpus, readText } from './engine';

/** The corpus (the swarm's peers must use the same file: the vocabulary comes from it). */
export function corpus(path?: string): { text: string; tokenizer: CharTokenizer; data: Dataset } {
  const text = path ? readText(path) : loadCorpus(defaultCorpus);
  const tokenizer = CharTokenizer.fromCorpus(text);
  return { text, tokenizer, data: Dataset.fromText(text, tokenizer, { valFraction: 0.1 }) };
}

/**
 * After a command has closed everything it opened: native libraries (node-datachannel's threads, a Dawn device
 * among several in one process) can hold a Node process for seconds to minutes after its event loop is empty.
 * A command that is done ends the process `ms` later with the exit code main() set.
 */
export function exitSoon(ms = 1500): void {
  setTimeout(() => process.exit(), ms);
}
