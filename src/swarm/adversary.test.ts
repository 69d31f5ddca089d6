import { describe, expect, it } from 'vitest';
import type { ControlMessage } from '../protocol/messages';
import { mulberry32 } from '../model/init';
import { AttackSpecError, corruptGradient, emptyAttackLog, FORGED_LOSS, formatAttack, parseAttack, ReportForger } from './adversary';

const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));

describe('parseAttack', () => {
  it('reads every mode', () => {
    expect(parseAttack('nan')).toEqual({ mode: 'nan' });
    expect(parseAttack('scale:-1000')).toEqual({ mode: 'scale', factor: -1000 });
    expect(parseAttack(' scale:2.5 ')).toEqual({ mode: 'scale', factor: 2.5 });
    for (const m of ['signflip', 'random', 'stale', 'bad-activations', 'forge-reports', 'frame-robust'] as const)
      expect(parseAttack(m)).toEqual({ mode: m });
    for (const t of ['nan', 'scale:-1000', 'signflip', 'random', 'stale', 'bad-activations', 'forge-reports', 'frame-robust'])
      expect(formatAttack(parseAttack(t))).toBe(t);
  });

  it('refuses bad specs with a clear error', () => {
    const cases: [string, RegExp][] = [
      ['', /unknown attack "" \(one of nan, scale:K, signflip, random, stale, bad-activations, forge-reports, frame-robust\)/],
      ['NaN', /unknown attack "NaN"/],
      ['flip', /unknown attack "flip"/],
      ['scale', /scale needs a finite factor, e.g. scale:-1000/],
      ['scale:', /scale needs a finite factor/],
      ['scale:x', /scale needs a finite factor/],
      ['scale:Infinity', /scale needs a finite factor/],
      ['scale:1', /scale:1 is the honest gradient/],
    ];
    for (const [t, msg] of cases) {
      expect(() => parseAttack(t)).toThrow(AttackSpecError);
      expect(() => parseAttack(t)).toThrow(msg);
    }
  });
});

describe('corruptGradient', () => {
  const honest = Float32Array.from([1, -2, 3, 0.5]);
  const prev = Float32Array.from([9, 9, 9, 9]);
  it('nan, scale, signflip, stale', () => {
    expect([...corruptGradient({ mode: 'nan' }, honest, null, mulberry32(1))].every(Number.isNaN)).toBe(true);
    expect([...corruptGradient({ mode: 'scale', factor: -1000 }, honest, null, mulberry32(1))]).toEqual([-1000, 2000, -3000, -500]);
    expect([...corruptGradient({ mode: 'signflip' }, honest, null, mulberry32(1))]).toEqual([-1, 2, -3, -0.5]);
    expect([...corruptGradient({ mode: 'stale' }, honest, prev, mulberry32(1))]).toEqual([9, 9, 9, 9]);
    // No previous gradient yet: the honest one (nothing older to send).
    expect([...corruptGradient({ mode: 'stale' }, honest, null, mulberry32(1))]).toEqual([...honest]);
  });

  it('random: the same norm, another direction, reproducible from the seed', () => {
    const big = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
    const a = corruptGradient({ mode: 'random' }, big, null, mulberry32(7));
    const b = corruptGradient({ mode: 'random' }, big, null, mulberry32(7));
    expect([...a]).toEqual([...b]);
    expect(Math.abs(norm(a) - norm(big)) / norm(big)).toBeLessThan(1e-5);
    const cos = a.reduce((s, x, i) => s + x * big[i], 0) / (norm(a) * norm(big));
    expect(Math.abs(cos)).toBeLessThan(0.2);
  });
});

describe('ReportForger', () => {
  it('forges mb-done for microbatches it does not own, low losses, and grad-sumsq for another stage', () => {
    const sent: ControlMessage[] = [];
    const log = emptyAttackLog();
    const f = new ReportForger({ peerId: () => 'bad', stage: () => 0, stages: () => 2 }, (m) => sent.push(m), log);
    f.observe({ type: 'step-begin', step: 3, attempt: 1, owners: [0, 1, 0], members: [['a', 'bad'], ['c']] });
    expect(sent.filter((m) => m.type === 'mb-done').map((m) => (m.type === 'mb-done' ? m.mb : -1))).toEqual([0, 2]);
    expect(sent.filter((m) => m.type === 'mb-loss')).toHaveLength(3);
    expect(sent.every((m) => m.type !== 'mb-loss' || m.loss === FORGED_LOSS)).toBe(true);
    expect(sent.find((m) => m.type === 'grad-sumsq')).toMatchObject({ step: 3, attempt: 1, stage: 1 });
    expect(log.forged).toBe(sent.length);
    // Its own loss reports are lowered; other messages pass as they are.
    expect(f.outgoing({ type: 'mb-loss', step: 3, attempt: 1, mb: 1, loss: 4.2 })).toMatchObject({ loss: FORGED_LOSS });
    const done: ControlMessage = { type: 'mb-done', step: 3, attempt: 1, mb: 1 };
    expect(f.outgoing(done)).toBe(done);
    f.observe({ type: 'status', state: 'ok' });
    expect(log.forged).toBe(sent.length + 1);
  });
});
