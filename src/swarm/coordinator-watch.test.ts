// CoordinatorWatch (src/swarm/coordinator-watch.ts) against a scripted signaling connection: a member waits for a
// coordinator that left (bounded, with the time left), re-announces when it returns or asks, and gives up after the
// bound with a message naming the run, the step and the bound.
import { describe, expect, it } from 'vitest';
import { Emitter } from '../net/emitter';
import type { ControlMessage } from '../protocol/messages';
import { CoordinatorWatch, type WatchSignaling } from './coordinator-watch';

type Ev = {
  'peer-left': { peerId: string; role: string };
  'peer-joined': { peerId: string; role: string };
  control: { from: string; msg: ControlMessage };
};

function setup(waitMs: number, position: { runId: string; step: number } | null = { runId: 'run-x', step: 7 }) {
  const ev = new Emitter<Ev>();
  const sig: WatchSignaling = { on: (e: keyof Ev, h: (x: never) => void) => ev.on(e, h as never) } as WatchSignaling;
  const log = { announced: 0, waiting: [] as (number | null)[], lost: [] as Error[] };
  const w = new CoordinatorWatch({
    signaling: sig,
    waitMs,
    position: () => position,
    reannounce: () => log.announced++,
    waiting: (ms) => log.waiting.push(ms),
    giveUp: (e) => log.lost.push(e),
  });
  return { ev, w, log };
}

describe('CoordinatorWatch', () => {
  it('waits when the coordinator leaves and re-announces when it rejoins', () => {
    const { ev, w, log } = setup(60_000);
    ev.emit('peer-left', { peerId: 'p', role: 'peer' });
    expect(w.isWaiting).toBe(false);
    ev.emit('peer-left', { peerId: 'c', role: 'coordinator' });
    expect(w.isWaiting).toBe(true);
    expect(log.waiting).toEqual([60_000]);
    ev.emit('peer-joined', { peerId: 'c2', role: 'coordinator' });
    expect(w.isWaiting).toBe(false);
    expect(log.announced).toBe(1);
    expect(log.waiting.at(-1)).toBeNull();
    w.close();
  });

  it('a reannounce of its run makes it announce (waiting or not); one of another run is ignored', () => {
    const { ev, w, log } = setup(60_000);
    ev.emit('control', { from: 'c', msg: { type: 'reannounce', runId: 'run-y', step: 3 } });
    expect(log.announced).toBe(0);
    ev.emit('control', { from: 'c', msg: { type: 'reannounce', runId: 'run-x', step: 7 } });
    expect(log.announced).toBe(1);
    ev.emit('peer-left', { peerId: 'c', role: 'coordinator' });
    ev.emit('control', { from: 'c', msg: { type: 'reannounce', runId: 'run-x', step: 7 } });
    expect(log.announced).toBe(2);
    expect(w.isWaiting).toBe(false);
    w.close();
  });

  it('a peer not in a run does not wait', () => {
    const { ev, w, log } = setup(10, null);
    ev.emit('peer-left', { peerId: 'c', role: 'coordinator' });
    expect(w.isWaiting).toBe(false);
    expect(log.waiting).toEqual([]);
    w.close();
  });

  it('gives up after the bound, saying which run, at which step, for how long', async () => {
    const { ev, w, log } = setup(30);
    ev.emit('peer-left', { peerId: 'c', role: 'coordinator' });
    await new Promise((r) => setTimeout(r, 100));
    expect(log.lost.map((e) => e.message)).toEqual(['the coordinator of run run-x left at step 7 and did not return within 0.03 s']);
    expect(w.isWaiting).toBe(false);
    w.close();
  });
});
