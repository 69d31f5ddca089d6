import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ControlMessage } from '../protocol/messages';
import { Liveness, type LivenessHost } from './liveness';

interface Host extends LivenessHost {
  sent: { msg: ControlMessage; to: string }[];
  alive: Set<string>;
  kept: Set<string>;
  frozen: string[];
  revived: string[];
  logs: string[];
}

function host(peers: string[]): Host {
  const h: Host = {
    sent: [],
    alive: new Set(peers),
    kept: new Set(),
    frozen: [],
    revived: [],
    logs: [],
    send: (msg, to) => h.sent.push({ msg, to }),
    isAlive: (p) => h.alive.has(p),
    keep: (p) => (h.kept.has(p) ? 'last replica' : null),
    freeze: (p) => {
      h.frozen.push(p);
      h.alive.delete(p);
    },
    revive: (p) => {
      h.revived.push(p);
      h.alive.add(p);
    },
    log: (s) => h.logs.push(s),
  };
  return h;
}

const pings = (h: Host) => h.sent.filter((s) => s.msg.type === 'ping');
const nonceOf = (m: ControlMessage) => (m.type === 'ping' ? m.nonce : -1);

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('Liveness', () => {
  it('no ping while the phase ends before its deadline', () => {
    const h = host(['a', 'b']);
    const l = new Liveness(h, { now: () => Date.now() });
    l.watch(['a', 'b'], 1000);
    vi.advanceTimersByTime(999);
    l.unwatch();
    vi.advanceTimersByTime(10_000);
    expect(h.sent).toEqual([]);
  });

  it('past the deadline every live member is pinged; the silent one is frozen, the answering one is not', () => {
    const h = host(['a', 'b', 'c']);
    h.alive.delete('c'); // already gone: not pinged
    const l = new Liveness(h, { pingTimeoutMs: 500, now: () => Date.now() });
    l.watch(['a', 'b', 'c'], 1000);
    vi.advanceTimersByTime(1000);
    expect(pings(h).map((s) => s.to)).toEqual(['a', 'b']);
    const nonce = nonceOf(pings(h)[0].msg);
    expect(l.heard('a', { type: 'pong', nonce })).toBe(true);
    vi.advanceTimersByTime(499);
    expect(h.frozen).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(h.frozen).toEqual(['b']);
    expect([...l.frozen]).toEqual(['b']);
  });

  it('a round everyone answers doubles the deadline, measured from the watch start', () => {
    const h = host(['a']);
    const l = new Liveness(h, { pingTimeoutMs: 500, now: () => Date.now() });
    l.watch(['a'], 1000);
    vi.advanceTimersByTime(1000);
    expect(pings(h)).toHaveLength(1);
    l.heard('a', { type: 'pong', nonce: nonceOf(pings(h)[0].msg) });
    vi.advanceTimersByTime(999); // t = 1999: the new deadline is 2000
    expect(pings(h)).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(pings(h)).toHaveLength(2);
    l.heard('a', { type: 'pong', nonce: nonceOf(pings(h)[1].msg) });
    vi.advanceTimersByTime(1999); // next at 4000
    expect(pings(h)).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(pings(h)).toHaveLength(3);
    expect(h.frozen).toEqual([]);
  });

  it('a pong with a wrong nonce or from another peer does not count', () => {
    const h = host(['a']);
    const l = new Liveness(h, { pingTimeoutMs: 500, now: () => Date.now() });
    l.watch(['a'], 100);
    vi.advanceTimersByTime(100);
    const nonce = nonceOf(pings(h)[0].msg);
    l.heard('a', { type: 'pong', nonce: nonce + 1 });
    l.heard('x', { type: 'pong', nonce });
    vi.advanceTimersByTime(500);
    expect(h.frozen).toEqual(['a']);
  });

  it("a stage's last replica is kept though silent", () => {
    const h = host(['a', 'b']);
    h.kept.add('a');
    const l = new Liveness(h, { pingTimeoutMs: 500, now: () => Date.now() });
    l.watch(['a', 'b'], 100);
    vi.advanceTimersByTime(600);
    expect(h.frozen).toEqual(['b']);
    expect(h.logs.some((s) => s.includes('a did not answer') && s.includes('last replica'))).toBe(true);
  });

  it('link-down pings the named peer at once, once while a ping is pending', () => {
    const h = host(['a', 'b']);
    const l = new Liveness(h, { pingTimeoutMs: 500, now: () => Date.now() });
    l.linkDown('a', 'b', 'closed');
    l.linkDown('a', 'b', 'closed');
    expect(pings(h).map((s) => s.to)).toEqual(['b']);
    l.linkDown('a', 'zz', 'closed'); // not a live peer: nothing
    expect(pings(h)).toHaveLength(1);
    vi.advanceTimersByTime(500);
    expect(h.frozen).toEqual(['b']);
  });

  it('any message of a frozen peer revives it, once; a peer that left cannot come back this way', () => {
    const h = host(['a', 'b']);
    const l = new Liveness(h, { pingTimeoutMs: 500, now: () => Date.now() });
    l.linkDown('b', 'a', 'closed');
    vi.advanceTimersByTime(500);
    expect(h.frozen).toEqual(['a']);
    expect(l.heard('a', { type: 'status', state: 'training' })).toBe(false);
    expect(h.revived).toEqual(['a']);
    expect(l.heard('a', { type: 'status', state: 'training' })).toBe(false);
    expect(h.revived).toEqual(['a']);
    l.linkDown('a', 'b', 'closed');
    vi.advanceTimersByTime(500);
    expect(h.frozen).toEqual(['a', 'b']);
    l.forget('b');
    l.heard('b', { type: 'pong', nonce: 99 });
    expect(h.revived).toEqual(['a']);
  });

  it('a round whose timer fires late here (this process was blocked) gives the answers another ping timeout', () => {
    const h = host(['a', 'b']);
    let skew = 0; // the clock jumps ahead of the timers: the event loop was blocked
    const l = new Liveness(h, { pingTimeoutMs: 1000, now: () => Date.now() + skew });
    l.watch(['a', 'b'], 100);
    vi.advanceTimersByTime(100);
    const nonce = nonceOf(pings(h)[0].msg);
    skew = 3000;
    vi.advanceTimersByTime(1000); // fires 3 s late: a grace
    expect(h.frozen).toEqual([]);
    expect(h.logs.some((s) => s.includes('late here'))).toBe(true);
    l.heard('a', { type: 'pong', nonce }); // the pong that was waiting in the socket
    vi.advanceTimersByTime(1000); // on time now: b is frozen, a is not
    expect(h.frozen).toEqual(['b']);
  });

  it('at most 3 graces: a process that is always late still freezes the silent', () => {
    const h = host(['a']);
    let skew = 0;
    const l = new Liveness(h, { pingTimeoutMs: 1000, now: () => Date.now() + skew });
    l.linkDown('x', 'a', 'dead');
    for (let i = 1; i <= 3; i++) {
      skew += 5000;
      vi.advanceTimersByTime(1000);
      expect(h.frozen).toEqual([]);
    }
    skew += 5000;
    vi.advanceTimersByTime(1000);
    expect(h.frozen).toEqual(['a']);
  });

  it('close() stops every timer', () => {
    const h = host(['a']);
    const l = new Liveness(h, { pingTimeoutMs: 500, now: () => Date.now() });
    l.watch(['a'], 100);
    vi.advanceTimersByTime(100);
    l.close();
    vi.advanceTimersByTime(10_000);
    expect(h.frozen).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
