// The Node runtime polls for the GPU at the lowest thread priority when asked (WaitHint.yieldCpu; node-runtime.ts),
// so Dawn's spinning poller leaves the cores to a CPU adapter's threads. The priority must be back where it was after
// every wait, overlapping waits included, and a wait without the hint must not touch it.
import { getPriority } from 'node:os';
import { describe, expect, it } from 'vitest';
import { gpuRuntime } from '../support/gpu';

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
});
