// Delivery of incoming items to handlers, keeping items that arrive before anyone subscribed: a transport is
// usually handed to its owner after an `await`, and data that raced ahead of the subscription must not vanish.

export class Inbox<T> {
  private readonly handlers = new Set<(item: T) => void>();
  private backlog: T[] = [];

  deliver(item: T): void {
    if (this.handlers.size === 0) {
      this.backlog.push(item);
      return;
    }
    for (const h of [...this.handlers]) {
      try {
        h(item);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  subscribe(handler: (item: T) => void): () => void {
    this.handlers.add(handler);
    if (this.backlog.length > 0) {
      const items = this.backlog;
      this.backlog = [];
      for (const item of items) handler(item);
    }
    return () => {
      this.handlers.delete(handler);
    };
  }

  /** Drops anything nobody collected (on close, so a dead link frees its memory). */
  clear(): void {
    this.backlog = [];
  }

  get backlogSize(): number {
    return this.backlog.length;
  }
}

/** Turns a subscription into an async iterator that finishes when `onEnd` fires. */
export function iterate<T>(
  subscribe: (h: (item: T) => void) => () => void,
  onEnd: (h: () => void) => () => void,
  ended: () => boolean,
): AsyncIterableIterator<T> {
  const queue: T[] = [];
  let waiting: ((r: IteratorResult<T>) => void) | null = null;
  let done = ended();
  const finish = () => {
    done = true;
    offItem();
    offEnd();
    if (waiting) {
      const w = waiting;
      waiting = null;
      w({ value: undefined, done: true });
    }
  };
  const offItem = subscribe((item) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w({ value: item, done: false });
    } else queue.push(item);
  });
  const offEnd = onEnd(finish);
  if (done) finish();
  const it: AsyncIterableIterator<T> = {
    next() {
      const item = queue.shift();
      if (item !== undefined) return Promise.resolve({ value: item, done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => {
        waiting = resolve;
      });
    },
    return() {
      finish();
      queue.length = 0;
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
