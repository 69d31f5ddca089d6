// The Web Worker entry: the whole single-peer engine behind comlink, so a page trains without blocking its UI.
// start() reports its phases (corpus, GPU, each matmul shape tuned or loaded) through an `onProgress` callback (a
// Comlink proxy), so the solo page is never silent while the autotuner times variants (~100 s on a CPU adapter the
// first time). Tuning goes shape by shape through the IndexedDB tuning cache: every shape is stored as soon as it is
// timed, so a Stop halfway keeps what was done, and the next start (a Start, a reload) loads it instead of re-timing.
import * as Comlink from 'comlink';
import { browserRuntime } from '../gpu/browser-runtime';
import type { AdapterReport } from '../gpu/device';
import { matmulShapeKey } from '../gpu/ops/matmul';
import { tuneMatmulCached, type CachedTuneResult } from '../gpu/tuning-cache';
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

/** What start() is doing; `done`/`total` for the tuning phase (shapes). */
export interface EngineProgress {
  phase: 'corpus' | 'gpu' | 'model' | 'tuning' | 'ready';
  done: number;
  total: number;
  /** Of `done`: shapes loaded from this tab's stored tuning (not re-timed). */
  loaded: number;
  text: string;
}

class EngineWorker {
  private rt?: Runtime;
  private trainer?: Trainer;
  private data?: Dataset;
  private init?: EngineInit;
  private nextStep = 0;

  async start(init: EngineInit, onProgress?: (p: EngineProgress) => void): Promise<EngineInfo> {
    const say = (p: EngineProgress) => onProgress?.(p);
    say({ phase: 'corpus', done: 0, total: 0, loaded: 0, text: `fetching ${init.corpusUrl}` });
    const res = await fetch(init.corpusUrl);
    if (!res.ok) throw new Error(`corpus ${init.corpusUrl}: HTTP ${res.status}`);
    const text = await res.text();
    const tokenizer = CharTokenizer.fromCorpus(text);
    this.data = Dataset.fromText(text, tokenizer, { valFraction: 0.1 });
    say({ phase: 'gpu', done: 0, total: 0, loaded: 0, text: 'opening the WebGPU device' });
    this.rt = await browserRuntime();
    const config: GPTConfig = { ...init.model, vocab_size: tokenizer.vocabSize };
    say({ phase: 'model', done: 0, total: 0, loaded: 0, text: 'building the model' });
    this.trainer = await Trainer.create(this.rt, {
      config,
      B: init.B,
      T: init.model.block_size,
      seed: init.seed,
      schedule: init.schedule,
      tune: false,
    });
    let tuning: CachedTuneResult | undefined;
    if (init.tune ?? true) tuning = await this.tune(this.trainer, this.rt, say);
    this.init = init;
    say({ phase: 'ready', done: 0, total: 0, loaded: 0, text: 'training' });
    return { adapter: this.rt.handle.report, params: this.trainer.stage.params.count, vocabSize: tokenizer.vocabSize, tuning };
  }

  /** The trainer's matmul shapes, one at a time through the tuning cache (stored after each), with progress. */
  private async tune(trainer: Trainer, rt: Runtime, say: (p: EngineProgress) => void): Promise<CachedTuneResult> {
    const all = [...trainer.stage.matmulShapes(), ...trainer.stages.flatMap((s) => s.matmulShapes())];
    const shapes = [...new Map(all.map((s) => [matmulShapeKey(s), s])).values()];
    const total = shapes.length;
    const out: CachedTuneResult = { loaded: 0, timed: 0, rejected: false };
    say({ phase: 'tuning', done: 0, total, loaded: 0, text: `tuning matmuls for ${rt.handle.report.key}: 0 / ${total}` });
    for (let i = 0; i < total; i++) {
      const r = await tuneMatmulCached(rt, [shapes[i]], idbTuningStore);
      // The first call adopts every stored choice; later shapes then count as loaded when nothing was timed.
      if (i === 0) {
        out.loaded = Math.min(r.loaded, total);
        out.rejected = r.rejected;
      }
      out.timed += r.timed;
      const loaded = i + 1 - out.timed;
      say({
        phase: 'tuning',
        done: i + 1,
        total,
        loaded,
        text: `tuning matmuls: ${i + 1} / ${total} shapes (${loaded} from this tab's stored tuning, ${out.timed} timed now)`,
      });
    }
    out.loaded = total - out.timed;
    return out;
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

  /** Releases the GPU device before the page terminates this worker. */
  async destroy(): Promise<void> {
    await this.rt?.flush().catch(() => undefined);
    this.rt?.destroy();
    this.rt = undefined;
  }
}

export type EngineWorkerApi = EngineWorker;

Comlink.expose(new EngineWorker());
