// Who validates whom: the replays handed out in one round count as load, so an idle replica does not take every job of
// its stage (found by `tabswarm simulate`: one idle replica took 10-15 validations per attempt at 1,000 peers).
import { describe, expect, it } from 'vitest';
import type { ControlMessage } from '../protocol/messages';
import { unitRun } from '../../tests/support/fake-plane';
import { TraceBook } from './traces';
import { StepValidation } from './validation';

/** One stage of `busy` replicas with `work` backward passes each and one idle replica; every contribution sampled. */
async function validators(busy: number, work: number): Promise<Map<string, number>> {
  const idle = 'idle';
  const workers = Array.from({ length: busy }, (_, i) => `busy${i}`);
  const members = [[idle, ...workers], ['last']];
  const book = new TraceBook(0, 0, members);
  const trace = (peerId: string, stage: number, n: number) =>
    book.traces.set(peerId, { peerId, stage, backward: Array.from({ length: n }, (_, k) => k), sent: [], recv: [], losses: new Map() });
  trace(idle, 0, 0);
  for (const w of workers) trace(w, 0, work);
  trace('last', 1, 0);
  const jobs = new Map<string, number>();
  const v = new StepValidation({
    run: unitRun({ trust: { aggregation: 'sum', validationRate: 1, strikes: 3 } }),
    step: 0,
    attempt: 0,
    members,
    book,
    adapters: new Map(),
    committed: new Map(),
    rotation: [0, 0],
    isAlive: () => true,
    keyOf: () => undefined,
    send: (msg: ControlMessage, to: string) => {
      if (msg.type === 'validate' && to === msg.validator) jobs.set(to, (jobs.get(to) ?? 0) + 1);
    },
    wait: () => Promise.resolve(false), // nobody answers: only who was asked matters here
    strike: () => undefined,
    emitValidation: () => undefined,
    log: () => undefined,
  });
  await v.check();
  return jobs;
}

describe('StepValidation: validator choice', () => {
  it('spreads a round of replays over the replicas instead of giving them all to the idle one', async () => {
    const jobs = await validators(6, 4);
    // 7 contributions of stage 0 (the idle one's too), each replayed by another replica.
    expect([...jobs.values()].reduce((a, b) => a + b, 0)).toBe(7);
    // The idle replica takes a replay of 4 passes and is then as loaded as the others: the rest rotate (before, it
    // took all 6 replays of the busy replicas' work).
    expect(jobs.get('idle')).toBeLessThanOrEqual(2);
    expect(Math.max(...jobs.values())).toBeLessThanOrEqual(2);
  });

  it('a round with equal loads rotates', async () => {
    const jobs = await validators(3, 0);
    expect(Math.max(...jobs.values())).toBeLessThanOrEqual(2);
  });
});
