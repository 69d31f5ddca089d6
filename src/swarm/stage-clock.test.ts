import { describe, expect, it } from 'vitest';
import { StageClock } from './stage-clock';

function fakeTime() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('StageClock', () => {
  it('splits an attempt into compute, codec, send, sync and the rest (wait)', async () => {
    const c = fakeTime();
    const clock = new StageClock(c.now);
    clock.begin(50); // the codec counter was at 50 ms
    c.advance(10); // waiting for activations
    clock.time('compute', () => c.advance(30)); // a forward with 5 ms of codec host time in it
    clock.time('send', () => c.advance(4));
    await clock.time('compute', async () => {
      c.advance(20);
    });
    clock.syncBegins();
    clock.time('compute', () => c.advance(6)); // the reduce's reads
    c.advance(12); // the all-reduce and the coordinator
    const t = clock.take(55);
    expect(t).toEqual({ wall: 82, compute: 51, codec: 5, send: 4, sync: 12, wait: 10 });
  });

  it('a throwing part still counts; begin drops the previous attempt', () => {
    const c = fakeTime();
    const clock = new StageClock(c.now);
    clock.begin();
    expect(() =>
      clock.time('send', () => {
        c.advance(3);
        throw new Error('closed');
      }),
    ).toThrow('closed');
    expect(clock.take().send).toBe(3);
    clock.begin();
    c.advance(7);
    expect(clock.take()).toEqual({ wall: 7, compute: 0, codec: 0, send: 0, sync: 0, wait: 7 });
  });

  it('never reports a negative part (overlapping measures, a codec counter that went back)', () => {
    const c = fakeTime();
    const clock = new StageClock(c.now);
    clock.begin(100);
    clock.add('compute', 40);
    clock.add('send', 40);
    clock.add('sync', Number.NaN);
    c.advance(50);
    const t = clock.take(90);
    for (const v of Object.values(t)) expect(v).toBeGreaterThanOrEqual(0);
    expect(t.wait).toBe(0);
    expect(t.codec).toBe(0);
  });
});
