import { describe, expect, it } from 'vitest';
import { MicrobatchDeadlines } from './deadlines';

describe('MicrobatchDeadlines', () => {
  it('before any observation: the first-step allowance is the step timeout', () => {
    const d = new MicrobatchDeadlines({ stepTimeoutMs: 60_000 });
    expect(d.median()).toBeNull();
    expect(d.deadlineMs()).toBe(60_000);
  });

  it('4 x the median of the observed phases, at least the floor', () => {
    const d = new MicrobatchDeadlines({ stepTimeoutMs: 60_000 });
    d.observe(100);
    expect(d.deadlineMs()).toBe(2000); // 400 ms is under the 2 s floor
    d.observe(1000);
    d.observe(900);
    expect(d.median()).toBe(900);
    expect(d.deadlineMs()).toBe(3600);
    d.observe(3000);
    expect(d.median()).toBe(950); // even count: the mean of the middle two
    expect(d.deadlineMs()).toBe(3800);
  });

  it('at most the step timeout', () => {
    const d = new MicrobatchDeadlines({ stepTimeoutMs: 10_000 });
    d.observe(5000);
    expect(d.deadlineMs()).toBe(10_000);
  });

  it('only the last 8 attempts count: a slow warm-up is forgotten', () => {
    const d = new MicrobatchDeadlines({ stepTimeoutMs: 600_000, minMs: 0 });
    for (let i = 0; i < 8; i++) d.observe(50_000);
    expect(d.deadlineMs()).toBe(200_000);
    for (let i = 0; i < 4; i++) d.observe(1000);
    expect(d.deadlineMs()).toBe(4 * 25_500); // 4 fast, 4 slow: the middle two are 1000 and 50_000
    for (let i = 0; i < 4; i++) d.observe(1000);
    expect(d.observed).toHaveLength(8);
    expect(d.deadlineMs()).toBe(4000);
  });

  it('ignores figures that are not durations; options are honoured', () => {
    const d = new MicrobatchDeadlines({ stepTimeoutMs: 60_000, minMs: 10, window: 2, factor: 3 });
    d.observe(Number.NaN);
    d.observe(-5);
    d.observe(Number.POSITIVE_INFINITY);
    expect(d.observed).toHaveLength(0);
    d.observe(100);
    d.observe(200);
    d.observe(300);
    expect(d.observed).toEqual([200, 300]);
    expect(d.deadlineMs()).toBe(750);
  });
});
