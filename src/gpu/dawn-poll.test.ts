import { afterEach, describe, expect, it, vi } from 'vitest';
import { dawnPolling, isDawnTick, throttleDawnPolling } from './dawn-poll';

describe("Dawn's polling through a timer", () => {
  afterEach(() => vi.restoreAllMocks());

  it('tells the binding tick (an unnamed native function) from JavaScript callbacks, builtins and bound functions', () => {
    expect(isDawnTick(Function.prototype)).toBe(true); // native, no name: what Napi::Function::New makes
    expect(isDawnTick(() => undefined)).toBe(false);
    expect(isDawnTick(function named() {})).toBe(false);
    expect(isDawnTick(Math.max)).toBe(false);
    expect(isDawnTick((() => undefined).bind(null))).toBe(false);
    expect(isDawnTick(undefined)).toBe(false);
  });

  it("routes only the binding's ticks through setTimeout; JavaScript callbacks keep setImmediate's order", async () => {
    throttleDawnPolling(25);
    expect(dawnPolling()).toEqual({ intervalMs: 25 });
    const timeout = vi.spyOn(globalThis, 'setTimeout');
    setImmediate(Function.prototype as () => void);
    expect(timeout).toHaveBeenCalledTimes(1);
    expect(timeout.mock.calls[0][1]).toBe(25);
    timeout.mockClear();
    const order: string[] = [];
    setTimeout(() => order.push('timer 5 ms'), 5);
    await new Promise<void>((resolve) =>
      setImmediate((x: string) => {
        order.push(x);
        resolve();
      }, 'immediate'),
    );
    expect(order).toEqual(['immediate']);
    // The immediate itself went through no timer (the 5 ms timer above is the only one).
    expect(timeout).toHaveBeenCalledTimes(1);
    // Installed once: a second call changes the interval only.
    throttleDawnPolling(1);
    expect(dawnPolling()).toEqual({ intervalMs: 1 });
  });
});
