// The coordinator page's run form: its text fields, read from the URL (every run option under its CLI flag's name,
// src/coordinator/run-builder.ts; older short names still read), and the run it describes. The run options take
// RUN_DEFAULTS, the CLI's, for everything not given: the page and `tabswarm coordinator` build the same run from
// the same options. On `tabswarm serve` the signaling URL and the room come from /api/config (serve-api.ts).
import {
  buildRun,
  DEFAULT_ROOM,
  NUMERIC_RUN_OPTIONS,
  TEXT_RUN_OPTIONS,
  readRunOptions,
  RUN_DEFAULTS,
  type NumericRunOption,
  type RunOptionName,
} from '../coordinator/run-builder';
import { parseRunConfig, type DataSpec, type RunConfig } from '../protocol/run-config';

/** The run options the form shows (the rest come from the URL or the defaults). */
export const FORM_OPTIONS = [
  'stages',
  'steps',
  'microbatches',
  'batch-size',
  'n-layer',
  'n-embd',
  'n-head',
  'block-size',
  'lr',
  'seed',
] as const satisfies readonly NumericRunOption[];
export type FormOption = (typeof FORM_OPTIONS)[number];

export const LABELS: Record<FormOption, string> = {
  stages: 'stages',
  steps: 'steps',
  microbatches: 'microbatches M',
  'batch-size': 'sequences B',
  'n-layer': 'n_layer',
  'n-embd': 'n_embd',
  'n-head': 'n_head',
  'block-size': 'block (T)',
  lr: 'learning rate',
  seed: 'seed',
};

/** Today's URL parameter names (the CLI flags') -> the older ones, still read. */
const OLDER_NAMES: Partial<Record<string, string>> = {
  microbatches: 'M',
  'batch-size': 'B',
  'n-layer': 'n_layer',
  'n-embd': 'n_embd',
  'n-head': 'n_head',
  'block-size': 'block',
  'min-peers': 'minPeers',
};

/** The form's text: signaling URL, room, min peers (empty: one per stage) and the run options by name. */
export interface RunForm {
  signal: string;
  room: string;
  minPeers: string;
  /** Only the options the person (or the URL) gave; the others take RUN_DEFAULTS when the run is built. */
  options: Partial<Record<RunOptionName, string>>;
}

/** The form as the URL fills it; `signal` and `room` are the fallbacks for a URL without them. */
export function formFromUrl(search: string, fallback: { signal: string; room?: string }): RunForm {
  const q = new URLSearchParams(search);
  const get = (name: string): string | null => {
    const older = OLDER_NAMES[name];
    return q.get(name) ?? (older === undefined ? null : q.get(older));
  };
  const options: Partial<Record<RunOptionName, string>> = {};
  const names: RunOptionName[] = [...NUMERIC_RUN_OPTIONS, ...TEXT_RUN_OPTIONS];
  for (const k of names) {
    const v = get(k);
    if (v !== null && v !== '') options[k] = v;
  }
  return {
    signal: q.get('signal') || fallback.signal,
    room: q.get('room') || fallback.room || DEFAULT_ROOM,
    minPeers: get('min-peers') ?? '',
    options,
  };
}

/** What a form field shows: the given value, else the shared default (placeholder text, not a value of the form). */
export function defaultOf(k: FormOption): string {
  return String(RUN_DEFAULTS[k]);
}

/**
 * The run the form describes over a vocabulary of `vocab` tokens (the run builder's defaults for the rest), on
 * `data` (null: tinyshakespeare, character tokenizer). Throws naming a bad field.
 */
export function runFromForm(f: RunForm, vocab: number, data: DataSpec | null): RunConfig {
  const run = buildRun(
    readRunOptions((name) => f.options[name]),
    vocab,
  );
  return data ? parseRunConfig({ ...run, data }) : run;
}

/** Peers that must have joined before step 0 (empty: one per stage, as the CLI's --min-peers). */
export function minPeersOf(f: RunForm, run: RunConfig): number {
  if (f.minPeers.trim() === '') return run.stages.length;
  const n = Number(f.minPeers);
  if (!Number.isInteger(n) || n < 1) throw new Error(`min peers: "${f.minPeers}" is not a positive integer`);
  return n;
}
