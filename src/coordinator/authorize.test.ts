// Who may report what (authorize.ts); the coordinator over real WebRTC with forging members is
// tests/swarm/trust-reports.test.ts.
import { describe, expect, it } from 'vitest';
import type { ControlMessage } from '../protocol/messages';
import { lossOfReports, refuseReport, ReportGate, type AuthorizeContext } from './authorize';

const members = [['a0', 'a1'], ['b0'], ['c0', 'c1']];
const ctx = (over: Partial<AuthorizeContext> = {}): AuthorizeContext => ({
  cur: { step: 2, attempt: 0, members, owners: ['a0', 'a1', 'a0', 'a1'] },
  syncing: null,
  announced: (p) => members.flat().includes(p),
  ...over,
});
const k = { step: 2, attempt: 0 };
const ok = (from: string, msg: ControlMessage, c = ctx()) => refuseReport(from, msg, c) === null;

describe('refuseReport', () => {
  it('mb-done only from the microbatch owner', () => {
    expect(ok('a1', { type: 'mb-done', ...k, mb: 1 })).toBe(true);
    expect(ok('a0', { type: 'mb-done', ...k, mb: 1 })).toBe(false);
    expect(ok('c0', { type: 'mb-done', ...k, mb: 1 })).toBe(false);
    expect(ok('a0', { type: 'mb-done', ...k, mb: 9 })).toBe(false);
    expect(ok('a0', { type: 'mb-done', ...k, mb: 0 }, ctx({ cur: null }))).toBe(false);
  });

  it('mb-loss only from a last-stage member, of a microbatch of the step', () => {
    expect(ok('c1', { type: 'mb-loss', ...k, mb: 3, loss: 1 })).toBe(true);
    expect(ok('a0', { type: 'mb-loss', ...k, mb: 3, loss: 1 })).toBe(false);
    expect(ok('b0', { type: 'mb-loss', ...k, mb: 3, loss: 1 })).toBe(false);
    expect(ok('c1', { type: 'mb-loss', ...k, mb: 4, loss: 1 })).toBe(false);
  });

  it('stage reports only from a member of the stage they name', () => {
    expect(ok('b0', { type: 'grad-sumsq', ...k, stage: 1, value: 1 })).toBe(true);
    expect(ok('a0', { type: 'grad-sumsq', ...k, stage: 1, value: 1 })).toBe(false);
    expect(ok('c1', { type: 'step-done', ...k, stage: 2, digest: 'd' })).toBe(true);
    expect(ok('c1', { type: 'step-done', ...k, stage: 0, digest: 'd' })).toBe(false);
    expect(ok('x', { type: 'step-done', ...k, stage: 7, digest: 'd' })).toBe(false);
    const trace: ControlMessage = { type: 'step-trace', ...k, stage: 0, part: 0, parts: 1, backward: [], sent: [], recv: [] };
    expect(ok('a1', trace)).toBe(true);
    expect(ok('b0', trace)).toBe(false);
    expect(ok('a1', { type: 'sync-done', step: 1, stage: 0, digest: 'd' }, ctx({ syncing: [['a1'], ['b0'], ['c0']] }))).toBe(true);
    expect(ok('a0', { type: 'sync-done', step: 1, stage: 0, digest: 'd' }, ctx({ syncing: [['a1'], ['b0'], ['c0']] }))).toBe(false);
  });

  it('validation only from the validator named, when one was', () => {
    const v: ControlMessage = { type: 'validation', ...k, stage: 0, worker: 'a0', ok: true, detail: '', maxAbsDiff: 0 };
    expect(ok('a1', v, ctx({ validatorOf: () => 'a1' }))).toBe(true);
    expect(ok('a0', v, ctx({ validatorOf: () => 'a1' }))).toBe(false);
    expect(ok('c0', v)).toBe(false);
  });

  it('hello and peer-info from anyone; swarm-ready from announced members; never coordinator messages', () => {
    expect(ok('stranger', { type: 'hello', protocol: 1 })).toBe(true);
    expect(ok('stranger', { type: 'peer-info', platform: 'node', gpu: true })).toBe(true);
    expect(ok('stranger', { type: 'swarm-ready', epoch: 1 })).toBe(false);
    expect(ok('b0', { type: 'swarm-ready', epoch: 1 })).toBe(true);
    expect(ok('b0', { type: 'step-apply', ...k, scale: 1, lr: 100 })).toBe(false);
    expect(ok('b0', { type: 'shutdown' })).toBe(false);
  });
});

describe('lossOfReports', () => {
  it('takes the route peer, else the only last-stage member, else what every reporter agrees on', () => {
    const r = new Map<string, number | null>([
      ['c0', 4],
      ['c1', 0.001],
    ]);
    expect(lossOfReports(r, ['c0', 'c1'], 'c0')).toBe(4);
    expect(lossOfReports(r, ['c0', 'c1'], null)).toBe(null);
    expect(lossOfReports(new Map([['c1', 3]]), ['c0', 'c1'], null)).toBe(3);
    expect(lossOfReports(r, ['c0'], null)).toBe(4);
    expect(lossOfReports(undefined, ['c0'], null)).toBe(undefined);
  });
});

it('ReportGate counts per type and rate-limits its log', () => {
  const lines: string[] = [];
  const g = new ReportGate((s) => lines.push(s));
  for (let i = 0; i < 250; i++) g.refuse('x', 'mb-done', 'not the owner');
  g.refuse('x', 'mb-loss', 'not last stage');
  expect(g.refused.get('mb-done')).toBe(250);
  expect(g.total).toBe(251);
  expect(lines.length).toBe(5 + 2 + 1);
});
