import { describe, expect, it } from 'vitest';
import { buildScenario, configFromFlags, configFromJson, DEFAULT_MODEL, defaultMicrobatches, readScenario, ScenarioError } from './scenario';

const noFile = (p: string): string => {
  throw new Error(`no file ${p}`);
};

describe('scenario', () => {
  it('takes the stated defaults', () => {
    const s = readScenario({}, noFile);
    expect(s).toEqual({
      peers: 100,
      stages: 4,
      churnPerHour: 0.1,
      adversaries: 0,
      compress: 'default',
      hours: 1,
      seed: 1,
      model: DEFAULT_MODEL,
      B: 12,
      M: 50,
    });
    expect(defaultMicrobatches(400, 4)).toBe(200);
    expect(defaultMicrobatches(10_000, 4)).toBe(512); // the admitted swarm's first stage, not the room's
    expect(defaultMicrobatches(1, 4)).toBe(4);
  });

  it('reads every flag', () => {
    const s = readScenario(
      {
        peers: '1000',
        stages: '2',
        'churn-per-hour': '0.25',
        adversaries: '0.05',
        compress: 'pipe=int8',
        hours: '0.5',
        seed: '7',
        'batch-size': '4',
        microbatches: '16',
      },
      noFile,
    );
    expect(s).toMatchObject({
      peers: 1000,
      stages: 2,
      churnPerHour: 0.25,
      adversaries: 0.05,
      compress: 'pipe=int8',
      hours: 0.5,
      seed: 7,
      B: 4,
      M: 16,
    });
  });

  it('reads a config file, the flags overriding it, the model merged field by field', () => {
    const file = JSON.stringify({ peers: 50, hours: 2, model: { n_layer: 8 }, M: 10 });
    const s = readScenario({ config: 'x.json', peers: '60' }, (p) => {
      expect(p).toBe('x.json');
      return file;
    });
    expect(s.peers).toBe(60);
    expect(s.hours).toBe(2);
    expect(s.M).toBe(10);
    expect(s.model).toEqual({ ...DEFAULT_MODEL, n_layer: 8 });
  });

  it('refuses bad input, naming the field and its flag', () => {
    expect(() => configFromFlags({ peers: 'many' })).toThrow('--peers: "many" is not a number');
    expect(() => configFromFlags({ peers: '2.5' })).toThrow(/peers \(--peers\): .*int/i);
    expect(() => configFromFlags({ adversaries: '1' })).toThrow(/adversaries \(--adversaries\)/);
    expect(() => configFromFlags({ 'churn-per-hour': '-1' })).toThrow(/churnPerHour \(--churn-per-hour\)/);
    expect(() => configFromJson('{"peers": 5, "peeers": 6}', 'c.json')).toThrow(/c\.json: .*peeers/);
    expect(() => configFromJson('{', 'c.json')).toThrow(/c\.json: not valid JSON/);
    expect(() => buildScenario({ stages: 5 }, {})).toThrow(/5 stages .* n_layer 4/);
    expect(() => buildScenario({ model: { n_head: 3 } }, {})).toThrow(/n_embd must be a multiple of n_head/);
    expect(() => buildScenario({}, { compress: 'act=int9' })).toThrow(ScenarioError);
    expect(() => buildScenario({}, { compress: 'act=int9' })).toThrow(/compress \(--compress\): act/);
    // the coordinator's own check: a bottleneck needs a boundary
    expect(() => buildScenario({ stages: 1 }, { compress: 'bottleneck=8' })).toThrow(/at least 2 stages/);
    expect(() => readScenario({ config: 'nope.json' }, noFile)).toThrow(/--config: cannot read nope\.json/);
  });

  it('fits `default` compression to a one-stage model as the run builder does', () => {
    expect(() => buildScenario({ stages: 1 }, {})).not.toThrow();
  });
});
