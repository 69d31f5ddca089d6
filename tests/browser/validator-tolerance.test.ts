// The cross-adapter difference a validator must tolerate (docs/trust.md "Validators"): one stage's replay on the same
// inputs and weights in Node (Dawn on lavapipe) and in headless Chromium (SwiftShader). It prints the measured
// differences and checks they are inside the default tolerance (DEFAULT_CROSS_TOLERANCE) and not zero-by-accident
// (the two adapters really ran: their keys differ).
import { describe, expect, it } from 'vitest';
import { loadCorpus } from '../../src/model/corpus-node';
import { Dataset, sampleBatch } from '../../src/model/data';
import { CharTokenizer } from '../../src/model/tokenizer';
import { COMPRESS_NONE } from '../../src/compress/spec';
import type { StageSpec } from '../../src/model/stage-compute';
import { DEFAULT_CROSS_TOLERANCE, relativeDiff } from '../../src/swarm/validator';
import { gpuRuntime } from '../support/gpu';
import { replayStage, type ReplayInput } from '../support/stage-replay';
import { rng as seeded, testSeed } from '../support/random';
import { browserSuite } from './suite';

/** Largest |a - b| relative to the largest |a| (the validator's measure, src/swarm/validator.ts relativeDiff). */
function rel(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return relativeDiff(Float32Array.from(a), Float32Array.from(b));
}

describe('validator tolerance across adapter kinds (lavapipe vs SwiftShader)', () => {
  const suite = browserSuite();

  it('one stage forward/backward: losses, output payloads and the gradient differ by less than the tolerance', async () => {
    const text = loadCorpus();
    const tok = CharTokenizer.fromCorpus(text);
    const data = Dataset.fromText(text, tok, { valFraction: 0.1 });
    const model = { n_layer: 2, n_head: 2, n_embd: 32, vocab_size: tok.vocabSize, block_size: 16 };
    const B = 2;
    const T = 16;
    const M = 4;
    const rand = seeded(testSeed('validator-tolerance'));
    const spec = (range: [number, number]): StageSpec => ({
      model,
      range: { layerStart: range[0], layerEnd: range[1] },
      B,
      T,
      slots: 1,
      stage: 0,
      seed: 11,
      compress: COMPRESS_NONE,
    });
    const micro = Array.from({ length: M }, (_, k) => {
      const b = sampleBatch(data.train, { seed: 11, step: 0, micro: k, B, T });
      return {
        tokens: [...b.inputs],
        targets: [...b.targets],
        gradOut: Array.from({ length: B * T * model.n_embd }, () => (rand() - 0.5) * 1e-3),
      };
    });
    const cases: { name: string; input: ReplayInput }[] = [
      { name: 'whole model (first + last stage)', input: { spec: spec([0, 2]), micro, lossScale: 1 / (M * B * T) } },
      { name: 'first stage of two', input: { spec: spec([0, 1]), micro, lossScale: 1 } },
    ];
    const page = await suite.browser.newPage();
    await page.goto(`${suite.server.url}/tests/browser/stage/index.html`);
    await page.waitForFunction(() => typeof window.replayStage === 'function', undefined, { timeout: 60_000 });
    const rt = await gpuRuntime();
    for (const c of cases) {
      const tab = await page.evaluate((i) => window.replayStage(i), c.input);
      const node = await replayStage(rt, c.input);
      expect(tab.adapter).toBe('swiftshader');
      expect(rt.handle.report.key).not.toBe(tab.adapter);
      // As the validator measures: losses relative to max(1, |loss|), vectors relative to their largest |value|.
      const dLoss = Math.max(0, ...node.losses.map((l, i) => Math.abs(l - tab.losses[i]) / Math.max(1, Math.abs(l))));
      const dOut = Math.max(0, ...node.outputs.map((o, i) => rel(o, tab.outputs[i])));
      const dGrad = rel(node.grads, tab.grads);
      console.log(
        `${c.name}: relative differences: loss ${dLoss.toExponential(2)}, outputs ${dOut.toExponential(2)}, ` +
          `gradient ${dGrad.toExponential(2)}; tolerance ${DEFAULT_CROSS_TOLERANCE}`,
      );
      for (const d of [dLoss, dOut, dGrad]) expect(d).toBeLessThan(DEFAULT_CROSS_TOLERANCE);
    }
  }, 180_000);
});
