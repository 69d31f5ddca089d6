// Dawn's Node binding waits for the GPU by polling: while any GPU promise (mapAsync, onSubmittedWorkDone, an error
// scope) is pending it re-queues a native tick with the global setImmediate, so the main thread spins, one libuv turn
// (an epoll syscall and the binding's ProcessEvents) after another, for as long as the GPU works. On a CPU adapter that
// spinning takes the cores the driver's threads compute on; with several devices in one process (in-process swarm
// peers) some wait is pending nearly all the time. Here the binding's ticks go through a timer instead: a wait is
// noticed within about `intervalMs` of the GPU finishing, and a pending wait costs almost no CPU.
//
// The binding's tick is a native function without a name (Napi::Function::New); JavaScript callers pass JavaScript
// functions, or bound ones (named "bound ..."), which keep the real setImmediate. The tick's handle is not used.

let installed: { intervalMs: number } | null = null;

/** An unnamed native function: the binding's tick (a builtin has a name, a bound function "bound ..."). */
export function isDawnTick(fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === '' && Function.prototype.toString.call(fn).endsWith('{ [native code] }');
}

/** Routes Dawn's polling ticks through `setTimeout(tick, intervalMs)`; once per process (a later call changes the interval). */
export function throttleDawnPolling(intervalMs = 1): void {
  if (installed) {
    installed.intervalMs = intervalMs;
    return;
  }
  const state = { intervalMs };
  installed = state;
  const immediate = globalThis.setImmediate;
  const throttled = function (this: unknown, fn: (...args: unknown[]) => void, ...args: unknown[]) {
    if (isDawnTick(fn)) return setTimeout(fn, state.intervalMs, ...args);
    return immediate(fn, ...args);
  };
  // The real setImmediate's own properties (util.promisify's custom form) stay reachable.
  globalThis.setImmediate = Object.assign(throttled, immediate) as typeof setImmediate;
}

/** Whether the throttle is installed, and its interval. */
export function dawnPolling(): { intervalMs: number } | null {
  return installed ? { ...installed } : null;
}
