// The single-tab engine's run (the contributor page without a swarm): a 4-layer GPT by default; the URL may shrink
// it (?n_layer=1&n_embd=32&block=16&batch=2&steps=20: tests, slow CPU adapters). Out-of-range values fall back to
// the defaults.
import type { GPTConfig } from '../model/config';
import type { LrSchedule } from '../model/schedule';

export interface SoloParams {
  model: Omit<GPTConfig, 'vocab_size'>;
  B: number;
  steps: number;
  schedule: LrSchedule;
}

function int(q: URLSearchParams, name: string, dflt: number, min: number, max: number): number {
  const v = Number(q.get(name));
  return q.has(name) && Number.isInteger(v) && v >= min && v <= max ? v : dflt;
}

export function soloParams(search: string = location.search): SoloParams {
  const q = new URLSearchParams(search);
  const n_embd = int(q, 'n_embd', 128, 16, 1024);
  const n_head = n_embd % 4 === 0 ? 4 : 1;
  return {
    model: { n_layer: int(q, 'n_layer', 4, 1, 24), n_head, n_embd, block_size: int(q, 'block', 64, 4, 1024) },
    B: int(q, 'batch', 12, 1, 256),
    steps: int(q, 'steps', 2000, 1, 1_000_000),
    schedule: { lr: 1e-3, minLr: 1e-4, warmup: 100, decaySteps: 2000 },
  };
}
