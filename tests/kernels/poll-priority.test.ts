// The Node runtime polls for the GPU at the lowest thread priority when asked (WaitHint.yieldCpu; node-runtime.ts),
// so Dawn's spinning poller leaves the cores to a CPU adapter's threads. The priority must be back where it was after
// every wait, overlapping waits included, and a wait without the hint must not touch it.
import { getPriority } from 'node:os';
import { describe, expect, it } from 'vitest';
import { gpuRuntime } from '../support/gpu';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import { dawnPolling, isDawnTick } from '../../src/gpu/dawn-poll';

describe('polling priority', () => {
  it('lowered during a yieldCpu wait, restored after, overlapping waits included; untouched otherwise', async (ctx) => {
    const rt = await gpuRuntime();
    const pp = rt.pollPriority;
    if (!pp) {
      // Only where restoring is allowed (Linux, root): say so rather than pass silently.
      expect(process.platform !== 'linux' || process.getuid?.() !== 0).toBe(true);
      ctx.skip();
      return;
    }
    const seen: number[] = [];
    rt.pollPriority = {
      lower() {
        pp.lower();
        seen.push(getPriority());
      },
      restore() {
        pp.restore();
      },
    };
    try {
      const before = getPriority();
      const t = rt.tensor([1 << 16], 'work');
      rt.fill(t, 1);
      await rt.flush({ yieldCpu: true });
      expect(seen).toEqual([19]);
      expect(getPriority()).toBe(before);
      // Two waits at once: the priority stays low until the last one ends.
      rt.fill(t, 2);
      const a = rt.flush({ yieldCpu: true });
      rt.fill(t, 3);
      const b = rt.flush({ yieldCpu: true });
      await Promise.all([a, b]);
      expect(getPriority()).toBe(before);
      // No hint: never lowered.
      seen.length = 0;
      rt.fill(t, 4);
      await rt.flush();
      await rt.read(t, 4);
      expect(seen).toEqual([]);
      expect(getPriority()).toBe(before);
      rt.release(t);
    } finally {
      rt.pollPriority = pp;
    }
  });

  it('one priority per process: two runtimes (in-process peers, yieldCpu by default) keep it low until both waits end', async (ctx) => {
    const shared = await gpuRuntime();
    if (!shared.pollPriority) {
      expect(process.platform !== 'linux' || process.getuid?.() !== 0).toBe(true);
      ctx.skip();
      return;
    }
    const [a, b] = [await nodeRuntime({ quiet: true, yieldCpu: true }), await nodeRuntime({ quiet: true, yieldCpu: true })];
    try {
      expect(a.pollPriority).toBe(b.pollPriority);
      expect(a.defaultWait).toEqual({ yieldCpu: true });
      expect(shared.defaultWait).toBeUndefined();
      const before = getPriority();
      const ta = a.tensor([1 << 12], 'a');
      const pa = a.pollPriority;
      const pb = b.pollPriority;
      if (!pa || !pb) throw new Error('no poll priority');
      // a's wait, b's starting inside it and outlasting it: a's end must not raise the thread while b still waits.
      pa.lower();
      pb.lower();
      pa.restore();
      expect(getPriority()).toBe(19);
      pb.restore();
      expect(getPriority()).toBe(before);
      // A wait with the default hint lowers: observed through a wrapped priority.
      const seen: number[] = [];
      const pp = a.pollPriority;
      if (!pp) throw new Error('no poll priority');
      a.pollPriority = {
        lower() {
          pp.lower();
          seen.push(getPriority());
        },
        restore() {
          pp.restore();
        },
      };
      a.fill(ta, 3);
      await a.read(ta, 4);
      expect(seen).toEqual([19]);
      expect(getPriority()).toBe(before);
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});

describe("Dawn's polling through a timer (src/gpu/dawn-poll.ts)", () => {
  it('is installed by the Node runtime; a wait then ticks at most about once a millisecond, and reads stay exact', async () => {
    const rt = await gpuRuntime();
    if (process.env.TABSWARM_DAWN_POLL_MS === '0') {
      expect(dawnPolling()).toBeNull();
      return;
    }
    expect(dawnPolling()).toEqual({ intervalMs: 1 });
    const x = rt.tensor([1 << 16], 'poll.x');
    const want = Float32Array.from({ length: 1 << 16 }, (_, i) => i * 0.5 - 7);
    rt.write(x, want);
    // Count the binding's ticks during the waits: through setTimeout, never setImmediate.
    let ticks = 0;
    const timeout = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      if (isDawnTick(fn)) ticks++;
      return timeout(fn, ms, ...args);
    }) as typeof setTimeout;
    const t0 = performance.now();
    try {
      for (let i = 0; i < 5; i++) expect(await rt.read(x)).toEqual(want);
    } finally {
      globalThis.setTimeout = timeout;
    }
    const ms = performance.now() - t0;
    expect(ticks).toBeGreaterThan(0);
    // A spinning poller ticks every libuv turn (hundreds for these reads); a 1 ms timer about once a millisecond.
    expect(ticks).toBeLessThanOrEqual(ms * 1.5 + 10);
    rt.release(x);
  });
});
