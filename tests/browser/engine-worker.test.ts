// The engine inside a Web Worker (comlink) in headless Chromium (SwiftShader WebGPU) trains a few steps, and its
// losses match the same run in Node (lavapipe) within float tolerance: same code, same seed, same batches.
import { describe, expect, it } from 'vitest';
import { loadCorpus } from '../../src/model/corpus-node';
import { Dataset, sampleBatch } from '../../src/model/data';
import { CharTokenizer } from '../../src/model/tokenizer';
import { Trainer } from '../../src/model/trainer';
import type { EngineInit } from '../../src/worker/engine-worker';
import { gpuRuntime } from '../support/gpu';
import { browserSuite } from './suite';

const init: EngineInit = {
  corpusUrl: '/tinyshakespeare.txt',
  model: { n_layer: 2, n_head: 2, n_embd: 32, block_size: 32 },
  B: 4,
  seed: 11,
  schedule: { lr: 3e-3, minLr: 3e-4, warmup: 2, decaySteps: 20 },
  tune: false,
};
const STEPS = 6;

describe('engine in a browser Web Worker', () => {
  const suite = browserSuite();

  it('trains and matches the Node engine', async () => {
    const page = await suite.browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${suite.server.url}/tests/browser/engine/index.html`);
    await page.waitForFunction(() => typeof window.runEngine === 'function', undefined, { timeout: 60_000 });
    const out = await page.evaluate(([i, n]) => window.runEngine(i, n), [init, STEPS] as const);
    expect(errors).toEqual([]);
    expect(out.info.adapter.key).toBe('swiftshader');
    const browserLosses = out.results.map((r) => r.loss);

    const text = loadCorpus();
    const tokenizer = CharTokenizer.fromCorpus(text);
    const data = Dataset.fromText(text, tokenizer, { valFraction: 0.1 });
    const rt = await gpuRuntime();
    const tr = await Trainer.create(rt, {
      config: { ...init.model, vocab_size: tokenizer.vocabSize },
      B: init.B,
      T: init.model.block_size,
      seed: init.seed,
      schedule: init.schedule,
      tune: false,
    });
    const nodeLosses: number[] = [];
    for (let it = 0; it < STEPS; it++) {
      nodeLosses.push(
        (await tr.step(it, [sampleBatch(data.train, { seed: init.seed, step: it, micro: 0, B: init.B, T: init.model.block_size })])).loss,
      );
    }
    expect(out.info.params).toBe(tr.stage.params.count);
    for (let i = 0; i < STEPS; i++) expect(Math.abs(browserLosses[i] - nodeLosses[i])).toBeLessThan(2e-3);
    expect(browserLosses[STEPS - 1]).toBeLessThan(browserLosses[0]);
  }, 300_000);
});
