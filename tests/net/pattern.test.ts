// The async pattern helpers (they yield to the event loop so a live link keeps its heartbeat) must give exactly the
// bytes and the verdicts of the plain ones, across their yield boundaries.
import { describe, expect, it } from 'vitest';
import { firstMismatch, firstMismatchAsync, patternBytes, patternBytesAsync } from './pattern';

describe('test pattern', () => {
  it('async and plain forms agree past a yield boundary', async () => {
    const n = 4 * 1024 * 1024 * 4 + 13; // four 4 MiB yields and an odd tail
    const a = await patternBytesAsync(7, n);
    expect(Buffer.compare(a, patternBytes(7, n))).toBe(0);
    expect(await firstMismatchAsync(7, a, n)).toBe(-1);
    const bad = a.slice();
    bad[n - 5] ^= 1;
    expect(await firstMismatchAsync(7, bad, n)).toBe(n - 5);
    expect(firstMismatch(7, bad, n)).toBe(n - 5);
    expect(await firstMismatchAsync(7, a.subarray(0, n - 1), n)).toBe(n - 1);
  });
});
