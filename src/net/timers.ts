// Timer helpers shared by browser and Node code.

/** Node timers keep the process alive; a housekeeping timer must never be the reason a process cannot exit. */
export function unrefTimer(t: unknown): void {
  (t as { unref?: () => void } | null)?.unref?.();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Rejects with TimeoutError after `ms` unless `promise` settles first; the timer is always cleared. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
