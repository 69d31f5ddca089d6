import { describe, expect, it } from 'vitest';
import { hashKeys } from '../model/data';
import { pickWeighted, RTT_ALPHA, RTT_EXPLORE, RttRouter } from './rtt-router';

const speeds: Record<string, number> = { a: 100, b: 300, c: 100 };
const speed = (p: string) => speeds[p] ?? 1;
const none = () => 0;

describe('RttRouter', () => {
  it('before any measurement: the speeds over (1 + queue), as the join benchmark says', () => {
    const r = new RttRouter(RTT_ALPHA, 0);
    expect(r.weights(['a', 'b'], speed, none, 0)).toEqual([100, 300]);
    expect(r.weights(['a', 'b'], speed, (p) => (p === 'b' ? 2 : 0), 0)).toEqual([100, 100]);
  });

  it('measured: 1 / EWMA of the round trips over (1 + queue)', () => {
    const r = new RttRouter(0.5, 0);
    r.sent('a', 0, 0);
    expect(r.back('a', 0, 100)).toBe(100);
    r.sent('a', 1, 1000);
    r.back('a', 1, 1300); // ewma = 100 + 0.5 x (300 - 100) = 200
    expect(r.rtt('a')).toBe(200);
    r.sent('b', 2, 0);
    r.back('b', 2, 50);
    const [wa, wb] = r.weights(['a', 'b'], speed, (p) => (p === 'a' ? 1 : 0), 2000);
    expect(wa).toBeCloseTo(1 / 200 / 2);
    expect(wb).toBeCloseTo(1 / 50);
  });

  it('a gradient from another peer than the one the microbatch went to, or twice, is no sample', () => {
    const r = new RttRouter(RTT_ALPHA, 0);
    r.sent('a', 0, 0);
    expect(r.back('b', 0, 10)).toBeNull();
    expect(r.back('a', 0, 10)).toBe(10);
    expect(r.back('a', 0, 20)).toBeNull();
    expect(r.rtt('b')).toBeUndefined();
  });

  it('a candidate not measured yet gets the round trip its speed implies relative to the measured ones', () => {
    const r = new RttRouter(RTT_ALPHA, 0);
    r.sent('a', 0, 0);
    r.back('a', 0, 90); // a: speed 100, 90 ms; b (speed 300) is estimated at 30 ms, c (speed 100) at 90 ms
    const [wa, wb, wc] = r.weights(['a', 'b', 'c'], speed, none, 1000);
    expect(wa).toBeCloseTo(1 / 90);
    expect(wb).toBeCloseTo(1 / 30);
    expect(wc).toBeCloseTo(1 / 90);
  });

  it('a microbatch held longer than the average counts as the round trip: a frozen replica stops attracting work', () => {
    const r = new RttRouter(RTT_ALPHA, 0);
    r.sent('a', 0, 0);
    r.back('a', 0, 100);
    r.sent('b', 1, 0);
    r.back('b', 1, 100);
    r.sent('b', 2, 1000); // never comes back
    const at = (now: number) => r.weights(['a', 'b'], speed, none, now);
    expect(at(1050)).toEqual([0.01, 0.01]); // 50 ms out: within its average
    const [wa, wb] = at(11_000); // 10 s out
    expect(wa).toBeCloseTo(0.01);
    // 1 / 10 s, raised to the exploration floor: a share of the total weight every candidate keeps
    expect(wb).toBeCloseTo((RTT_EXPLORE / 2) * (0.01 + 1 / 10_000), 8);
    expect(wb / (wa + wb)).toBeLessThan(RTT_EXPLORE);
    r.begin(); // a new attempt: nothing in flight, the averages stay
    expect(at(20_000)).toEqual([0.01, 0.01]);
  });

  it("a peer's first round trip is its warm-up (pipeline compiles): it does not count", () => {
    const r = new RttRouter(); // warm-up of one sample
    r.sent('a', 0, 0);
    expect(r.back('a', 0, 5000)).toBe(5000); // compiling
    expect(r.rtt('a')).toBeUndefined();
    r.sent('a', 1, 6000);
    r.back('a', 1, 6100);
    expect(r.rtt('a')).toBe(100);
  });

  it('a replica with an inflated average keeps a floor share and wins its share back once measured again', () => {
    const r = new RttRouter(0.5, 0);
    r.sent('a', 0, 0);
    r.back('a', 0, 100);
    r.sent('b', 1, 0);
    r.back('b', 1, 10_000); // one bad sample
    const w = r.weights(['a', 'b'], speed, none, 20_000);
    expect(w[1] / (w[0] + w[1])).toBeGreaterThan((RTT_EXPLORE / 2) * 0.9); // the floor is a share of the weights before it
    for (let k = 0; k < 12; k++) {
      r.sent('b', 10 + k, 0);
      r.back('b', 10 + k, 100);
    }
    const [wa, wb] = r.weights(['a', 'b'], speed, none, 20_000);
    expect(wb / wa).toBeGreaterThan(0.9);
  });

  it('routes deterministically given the weights, and by the weights over many microbatches', () => {
    const r = new RttRouter(RTT_ALPHA, 0);
    r.sent('a', 0, 0);
    r.back('a', 0, 100);
    r.sent('b', 1, 0);
    r.back('b', 1, 300); // a is 3x faster: about 3/4 of the microbatches
    const w = r.weights(['a', 'b'], speed, none, 1000);
    const route = (seed: number, mb: number) => pickWeighted(['a', 'b'], w, hashKeys([seed, 5, 0, mb, 0]) / 0x100000000);
    const first = Array.from({ length: 64 }, (_, mb) => route(11, mb));
    expect(Array.from({ length: 64 }, (_, mb) => route(11, mb))).toEqual(first);
    let toA = 0;
    for (let mb = 0; mb < 4000; mb++) if (route(7, mb) === 'a') toA++;
    expect(toA / 4000).toBeGreaterThan(0.72);
    expect(toA / 4000).toBeLessThan(0.78);
  });

  it('pickWeighted: bounds, no candidates, weights that are not usable', () => {
    expect(pickWeighted([], [], 0.5)).toBeUndefined();
    expect(pickWeighted(['x', 'y'], [1, 1], 0)).toBe('x');
    expect(pickWeighted(['x', 'y'], [1, 1], 0.999999)).toBe('y');
    expect(pickWeighted(['x', 'y'], [0, 1], 0)).toBe('y');
    expect(pickWeighted(['x', 'y'], [Number.NaN, 0], 0.75)).toBe('y'); // none usable: uniform
    expect(pickWeighted(['x', 'y'], [Number.POSITIVE_INFINITY, 1], 0.1)).toBe('y');
  });
});
