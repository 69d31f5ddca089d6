// Per-kind tensor subscriptions on one transport. Transport.onTensor hands early tensors to its FIRST subscriber
// only; the demux is that one subscriber and keeps early tensors per kind (bounded), so every consumer of a kind
// (activations, gradients, all-reduce shards, state transfer...) gets them, whoever subscribes first.

import type { Unsubscribe } from './emitter';
import type { IncomingTensor } from './tensor';
import type { Transport } from './transport';

export interface TensorDemuxOptions {
  /** Tensors of a kind nobody listens to yet are kept up to this many bytes in total (oldest dropped beyond). */
  maxBacklogBytes: number;
  /** ... and up to this many messages. */
  maxBacklogMessages: number;
}

const DEFAULT_DEMUX: TensorDemuxOptions = { maxBacklogBytes: 2 * 1024 ** 3, maxBacklogMessages: 4096 };

/**
 * Routes a transport's incoming tensors by `kind`. Registers ONE onTensor handler per transport (get it with
 * `TensorDemux.of(t)`, idempotent). Tensors of a kind with no subscriber are kept (bounded) and handed to the first
 * subscriber of that kind, so every consumer gets the "early messages are kept" guarantee, not just the first.
 */
export class TensorDemux {
  private static readonly attached = new WeakMap<Transport, TensorDemux>();

  static of(t: Transport, options: Partial<TensorDemuxOptions> = {}): TensorDemux {
    let d = TensorDemux.attached.get(t);
    if (!d) {
      d = new TensorDemux(t, { ...DEFAULT_DEMUX, ...options });
      TensorDemux.attached.set(t, d);
    }
    return d;
  }

  private readonly handlers = new Map<string, Set<(x: IncomingTensor) => void>>();
  private backlog: IncomingTensor[] = [];
  private backlogBytes = 0;
  /** Backlogged tensors dropped because the backlog was full. */
  dropped = 0;
  /** Tensors the gate refused. */
  refused = 0;
  private gate: ((x: IncomingTensor) => boolean) | null = null;

  private constructor(
    readonly transport: Transport,
    private readonly opts: TensorDemuxOptions,
  ) {
    transport.onTensor((x) => this.deliver(x));
    transport.onClose(() => {
      this.backlog = [];
      this.backlogBytes = 0;
    });
  }

  on(kind: string, handler: (x: IncomingTensor) => void): Unsubscribe {
    let set = this.handlers.get(kind);
    if (!set) {
      set = new Set();
      this.handlers.set(kind, set);
    }
    set.add(handler);
    const mine = this.backlog.filter((x) => x.kind === kind);
    if (mine.length > 0) {
      this.backlog = this.backlog.filter((x) => x.kind !== kind);
      for (const x of mine) this.backlogBytes -= x.bytes.byteLength;
      for (const x of mine) handler(x);
    }
    return () => {
      set.delete(handler);
    };
  }

  /**
   * Decides, before any routing or buffering, whether a tensor from this transport's peer is delivered at all (the
   * layer above knows who may send what: src/swarm/tensor-policy.ts); a refused tensor is dropped and counted.
   */
  setGate(gate: ((x: IncomingTensor) => boolean) | null): void {
    this.gate = gate;
  }

  private deliver(x: IncomingTensor): void {
    if (this.gate && !this.gate(x)) {
      this.refused++;
      return;
    }
    const set = this.handlers.get(x.kind);
    if (set && set.size > 0) {
      for (const h of [...set]) {
        try {
          h(x);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
      return;
    }
    this.backlog.push(x);
    this.backlogBytes += x.bytes.byteLength;
    while (this.backlog.length > 0 && (this.backlogBytes > this.opts.maxBacklogBytes || this.backlog.length > this.opts.maxBacklogMessages)) {
      const old = this.backlog.shift();
      if (old) this.backlogBytes -= old.bytes.byteLength;
      this.dropped++;
    }
  }

  get backlogSize(): { messages: number; bytes: number } {
    return { messages: this.backlog.length, bytes: this.backlogBytes };
  }
}
