import { describe, expect, it } from 'vitest';
import {
  classTokensPerSec,
  DEVICE_CLASSES,
  drawProfiles,
  LAVAPIPE_REFERENCE_TOKENS_PER_S,
  lavapipeFlopsPerS,
  REFERENCE_MODEL,
  SWIFTSHADER_OVER_LAVAPIPE,
} from './peer-profiles';
import { Rng } from './rng';
import { buildScenario } from './scenario';
import type { Scenario } from './types';

function scenario(over: Partial<Scenario> = {}): Scenario {
  return { ...buildScenario({}, {}), ...over };
}

function cls(name: string) {
  const c = DEVICE_CLASSES.find((d) => d.name.startsWith(name));
  if (!c) throw new Error(name);
  return c;
}

describe('device classes', () => {
  it('lavapipe reproduces the measured reference run: 4 blocks + head at 3,519 tokens/s', () => {
    const s = scenario();
    expect(s.model).toEqual(REFERENCE_MODEL);
    expect(lavapipeFlopsPerS()).toBeGreaterThan(18e9);
    expect(lavapipeFlopsPerS()).toBeLessThan(18.4e9);
    // per block it is faster than the whole model by (4 blocks + head) / 1 block of FLOPs
    const perBlock = classTokensPerSec(cls('lavapipe'), s);
    expect(perBlock / LAVAPIPE_REFERENCE_TOKENS_PER_S).toBeGreaterThan(4);
    expect(perBlock / LAVAPIPE_REFERENCE_TOKENS_PER_S).toBeLessThan(4.1);
    expect(classTokensPerSec(cls('swiftshader'), s) / perBlock).toBeCloseTo(SWIFTSHADER_OVER_LAVAPIPE, 10);
  });

  it('GPU classes rank by FLOP rate, launch overhead capping the fastest', () => {
    const s = scenario();
    const iris = classTokensPerSec(cls('integrated'), s);
    const mid = classTokensPerSec(cls('mid'), s);
    const high = classTokensPerSec(cls('high'), s);
    expect(iris).toBeGreaterThan(classTokensPerSec(cls('lavapipe'), s));
    expect(mid).toBeGreaterThan(iris);
    expect(high).toBeGreaterThan(mid);
    expect(high / mid).toBeLessThan(82.6 / 12.7); // the fixed per-launch cost
    expect(DEVICE_CLASSES.reduce((a, c) => a + c.share, 0)).toBeCloseTo(1, 10);
  });
});

describe('drawProfiles', () => {
  it('is identical for the same seed and differs for another', () => {
    const s = scenario({ peers: 200, churnPerHour: 0.5, adversaries: 0.1 });
    expect(drawProfiles(s, new Rng(5))).toEqual(drawProfiles(s, new Rng(5)));
    expect(drawProfiles(s, new Rng(6))).not.toEqual(drawProfiles(s, new Rng(5)));
  });

  it('draws the initial peers over the first minute, exact adversaries, unique ids, sane figures', () => {
    const s = scenario({ peers: 1000, churnPerHour: 0, adversaries: 0.1 });
    const p = drawProfiles(s, new Rng(1));
    expect(p).toHaveLength(1000);
    expect(p.filter((x) => x.adversary)).toHaveLength(100);
    expect(new Set(p.map((x) => x.id)).size).toBe(1000);
    for (const x of p) {
      expect(x.id).toMatch(/^[0-9a-f]{32}$/);
      expect(x.joinAtS).toBeGreaterThanOrEqual(0);
      expect(x.joinAtS).toBeLessThan(60);
      expect(x.sessions).toEqual([]);
      expect(x.tokensPerSec).toBeGreaterThan(0);
      expect(x.upBytesPerSec).toBeGreaterThan(0);
      expect(x.rttMs).toBeGreaterThan(0);
    }
    // joins are sorted
    expect(p.map((x) => x.joinAtS)).toEqual([...p.map((x) => x.joinAtS)].sort((a, b) => a - b));
    // home connections: median upload between DSL's and fibre's
    const ups = p.map((x) => x.upBytesPerSec).sort((a, b) => a - b);
    expect(ups[500]).toBeGreaterThan((8e6 / 8) * 1);
    expect(ups[500]).toBeLessThan(150e6 / 8);
  });

  it('churns at the stated rate, with never / minutes / reload departures, and replaces the lost', () => {
    const s = scenario({ peers: 2000, churnPerHour: 0.5, hours: 2 });
    const p = drawProfiles(s, new Rng(3));
    const initial = p.filter((x) => x.joinAtS < 60);
    const sessions = p.flatMap((x) => x.sessions);
    // first departures within the first hour ~ 1 - e^-0.5 = 39% of initial peers
    const firstHour = initial.filter((x) => x.sessions.length > 0 && x.sessions[0].leaveAtS < 3600).length / initial.length;
    expect(firstHour).toBeGreaterThan(0.35);
    expect(firstHour).toBeLessThan(0.44);
    const never = sessions.filter((x) => x.returnAfterS === null).length / sessions.length;
    const reload = sessions.filter((x) => x.returnAfterS !== null && x.returnAfterS < 60).length / sessions.length;
    expect(never).toBeGreaterThan(0.25);
    expect(never).toBeLessThan(0.35);
    expect(reload).toBeGreaterThan(0.35);
    expect(reload).toBeLessThan(0.45);
    for (const x of p) {
      let t = x.joinAtS;
      x.sessions.forEach((ss, i) => {
        expect(ss.leaveAtS).toBeGreaterThan(t);
        expect(ss.leaveAtS).toBeLessThan(2 * 3600);
        if (ss.returnAfterS === null) expect(i).toBe(x.sessions.length - 1);
        else t = ss.leaveAtS + ss.returnAfterS;
      });
    }
    // newcomers ~ peers x 0.5/h x 30% x 2 h = 600
    const newcomers = p.length - 2000;
    expect(newcomers).toBeGreaterThan(520);
    expect(newcomers).toBeLessThan(680);
  });
});
