import { describe, expect, it } from 'vitest';
import { buildRun, evenStages, readRunOptions, RUN_DEFAULTS, RunBuildError } from './run-builder';

describe('buildRun', () => {
  it('fills every option from the one set of defaults (the demo model: 40 steps, B=4, 2 stages)', () => {
    const run = buildRun({}, 65);
    expect(run.steps).toBe(40);
    expect(run.B).toBe(4);
    expect(run.M).toBe(4);
    expect(run.T).toBe(64);
    expect(run.model).toEqual({ n_layer: 4, n_head: 4, n_embd: 64, vocab_size: 65, block_size: 64 });
    expect(run.stages).toEqual([
      { layerStart: 0, layerEnd: 2 },
      { layerStart: 2, layerEnd: 4 },
    ]);
    expect(run.schedule).toEqual({ lr: 3e-3, minLr: 3e-4, warmup: 5, decaySteps: 40 });
    expect(run.optimizer.lr).toBe(3e-3);
    expect(run.optimizer.gradClip).toBe(RUN_DEFAULTS['grad-clip']);
    expect(run.seed).toBe(1337);
    expect(run.slots).toBeUndefined();
    expect(run.runId).toMatch(/^run-[0-9a-f]{8}$/);
  });

  it('takes the given options over the defaults; the schedule decays over the run', () => {
    const run = buildRun({ steps: 8, 'batch-size': 2, 'n-layer': 3, stages: 3, lr: 1e-2, slots: 2, 'run-id': 'r1' }, 10);
    expect(run).toMatchObject({ runId: 'r1', steps: 8, B: 2, slots: 2, schedule: { lr: 1e-2, decaySteps: 8 }, optimizer: { lr: 1e-2 } });
    expect(run.stages).toHaveLength(3);
  });

  it('refuses bad options, naming them as the caller calls them', () => {
    const flag = (n: string) => `--${n}`;
    expect(() => buildRun({ stages: 5 }, 65, flag)).toThrow('--stages 5 exceeds --n-layer 4');
    expect(() => buildRun({ steps: 0 }, 65, flag)).toThrow(/--steps: 0 is not above 0/);
    expect(() => buildRun({ 'n-embd': 30 }, 65, flag)).toThrow(RunBuildError);
    expect(() => buildRun({ 'block-size': 16 }, 65)).not.toThrow();
  });
});

describe('trust options', () => {
  it('none given: no trust section (sum, no validators); any given: the rest take TRUST_NONE', () => {
    expect(buildRun({}, 65).trust).toBeUndefined();
    expect(buildRun({ aggregation: 'trimmed-mean' }, 65).trust).toEqual({ aggregation: 'trimmed-mean', validationRate: 0, strikes: 3 });
    expect(buildRun({ 'validation-rate': 0.25, strikes: 2 }, 65).trust).toEqual({ aggregation: 'sum', validationRate: 0.25, strikes: 2 });
  });

  it('reads them from text (flags, URL parameters) and refuses bad values', () => {
    const q = new URLSearchParams('aggregation=centered-clip&validation-rate=0.1&strikes=5');
    const o = readRunOptions((n) => q.get(n) ?? undefined);
    expect(o).toEqual({ aggregation: 'centered-clip', 'validation-rate': 0.1, strikes: 5 });
    expect(buildRun(o, 65).trust).toEqual({ aggregation: 'centered-clip', validationRate: 0.1, strikes: 5 });
    const flag = (n: string) => `--${n}`;
    expect(() => readRunOptions((n) => (n === 'aggregation' ? 'median' : undefined), flag)).toThrow(
      '--aggregation: "median" is not one of sum, trimmed-mean, centered-clip',
    );
    expect(() => readRunOptions((n) => (n === 'strikes' ? '1.5' : undefined), flag)).toThrow('--strikes: "1.5" is not an integer');
    expect(() => buildRun({ 'validation-rate': 2 }, 65, flag)).toThrow(/--validation-rate/);
    expect(() => buildRun({ strikes: 0 }, 65, flag)).toThrow(/--strikes/);
  });
});

describe('readRunOptions', () => {
  it('parses the given options from text, leaves the rest out', () => {
    const q = new URLSearchParams('steps=12&lr=0.01&run-id=x');
    expect(readRunOptions((n) => q.get(n) ?? undefined)).toEqual({ steps: 12, lr: 0.01, 'run-id': 'x' });
  });

  it('refuses a non-number and a fractional integer option', () => {
    expect(() =>
      readRunOptions(
        (n) => (n === 'steps' ? 'many' : undefined),
        (n) => `--${n}`,
      ),
    ).toThrow('--steps: "many" is not a number');
    expect(() => readRunOptions((n) => (n === 'batch-size' ? '2.5' : undefined))).toThrow('batch-size: "2.5" is not an integer');
    expect(() => readRunOptions((n) => (n === 'lr' ? '' : undefined))).toThrow('is not a number');
  });
});

describe('evenStages', () => {
  it('splits layers contiguously, earlier stages taking the extra ones', () => {
    expect(evenStages(5, 2)).toEqual([
      { layerStart: 0, layerEnd: 3 },
      { layerStart: 3, layerEnd: 5 },
    ]);
    expect(evenStages(3, 3).map((s) => s.layerEnd - s.layerStart)).toEqual([1, 1, 1]);
    expect(() => evenStages(2, 3)).toThrow();
  });
});

describe('dataset', () => {
  const spec = {
    tokenizer: 'gpt2',
    vocab: 'used',
    name: 'notes.txt',
    trainSha256: 'a'.repeat(64),
    valSha256: 'b'.repeat(64),
    trainTokens: 900,
    valTokens: 100,
  } as const;

  it('the default dataset leaves data out (runs as before); another one is in the run with its vocabulary', () => {
    expect(buildRun({ 'run-id': 'r' }, 65)).toEqual(buildRun({ 'run-id': 'r' }, { vocab: 65 }));
    expect(buildRun({}, 65).data).toBeUndefined();
    const run = buildRun({}, { vocab: 321, data: spec });
    expect(run.data).toEqual(spec);
    expect(run.model.vocab_size).toBe(321);
  });

  it('refuses a window longer than a split', () => {
    const flag = (n: string) => `--${n}`;
    expect(() => buildRun({ 'block-size': 100 }, { vocab: 321, data: spec }, flag)).toThrow(
      '--block-size 100: "notes.txt" has 900 train and 100 validation tokens, each split needs 101',
    );
    expect(() => buildRun({ 'block-size': 99 }, { vocab: 321, data: spec })).not.toThrow();
  });
});
