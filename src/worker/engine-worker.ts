// The Web Worker entry: the whole single-peer engine behind comlink, so a page trains without blocking its UI.
// The swarm issue extends this worker with a stage runtime; the engine API here is what it builds on.
import * as Comlink from 'comlink';
import { browserRuntime } from '../gpu/browser-runtime';
import type { AdapterReport } from '../gpu/device';
import type { CachedTuneResult } from '../gpu/tuning-cache';
import type { Runtime } from '../gpu/runtime';
import { Dataset, sampleBatch } from '../model/data';
import type { LrSchedule } from '../model/schedule';
import { CharTokenizer } from '../model/tokenizer';
import { Trainer, type StepResult } from '../model/trainer';
import type { GPTConfig } from '../model/config';
import { idbTuningStore } from './idb-tuning-store';

export interface EngineInit {
  corpusUrl: string;
  model: Omit<GPTConfig, 'vocab_size'>;
  B: number;
  seed: number;
  schedule: LrSchedule;
  /** Autotune matmuls for this adapter first (default true; tests skip it: compiling every variant is slow on SwiftShader). */
  tune?: boolean;
}

export interface EngineInfo {
  adapter: AdapterReport;
  params: number;
  vocabSize: number;
  /** Matmul tuning at start: choices loaded from IndexedDB and shapes timed now (absent with tune: false). */
  tuning?: CachedTuneResult;
}

class EngineWorker {
  private rt?: Runtime;
  private trainer?: Trainer;
  private data?: Dataset;
  private init?: EngineInit;
  private nextStep = 0;

  async start(init: EngineInit): Promise<EngineInfo> {
    const res = await fetch(init.corpusUrl);
    if (!res.ok) throw new Error(`corpus ${init.corpusUrl}: HTTP ${res.status}`);
    const text = await res.text();
    const tokenizer = CharTokenizer.fromCorpus(text);
    this.data = Dataset.fromText(text, tokenizer, { valFraction: 0.1 });
    this.rt = await browserRuntime();
    const config: GPTConfig = { ...init.model, vocab_size: tokenizer.vocabSize };
    this.trainer = await Trainer.create(this.rt, {
      config,
      B: init.B,
      T: init.model.block_size,
      seed: init.seed,
      schedule: init.schedule,
      tune: init.tune,
      // The tab keeps its tuning results: later starts on this GPU load them instead of re-timing (~100 s).
      tuningStore: idbTuningStore,
    });
    this.init = init;
    return { adapter: this.rt.handle.report, params: this.trainer.stage.params.count, vocabSize: tokenizer.vocabSize, tuning: this.trainer.tuning };
  }

  /** Runs `n` optimizer steps on the deterministic sampler's batches; returns each step's result. */
  async train(n: number): Promise<StepResult[]> {
    if (!this.trainer || !this.data || !this.init) throw new Error('engine worker: start() first');
    const out: StepResult[] = [];
    const T = this.init.model.block_size;
    for (let k = 0; k < n; k++) {
      const it = this.nextStep++;
      const batch = sampleBatch(this.data.train, { seed: this.init.seed, step: it, micro: 0, B: this.init.B, T });
      out.push(await this.trainer.step(it, [batch]));
    }
    return out;
  }
}

export type EngineWorkerApi = EngineWorker;

Comlink.expose(new EngineWorker());
