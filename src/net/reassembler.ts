// Rebuilds tensors from chunks. Defensive by design: a peer is not trusted to send consistent chunks, so every
// chunk is checked against the first one seen for its message and against hard size limits, and a message whose
// chunks stop arriving is abandoned and its buffer released.

import { expectedByteLength, type DType } from './dtype';
import { chunkCountFor, MIN_CHUNK_SIZE, TENSOR_HEADER_BYTES, type DecodedFrame } from './framing';
import { unrefTimer } from './timers';
import { tensorDescriptorSchema, type IncomingTensor, type TensorDescriptor } from './tensor';

export type RejectReason =
  | 'oversized' // total or pending bytes over the limit, or a chunk larger than a message may be
  | 'out-of-range' // chunk index >= count, or count/size inconsistent with the total
  | 'duplicate' // the same chunk index twice
  | 'mismatch' // header fields differ from the message's first chunk, or a payload of the wrong length
  | 'bad-descriptor' // chunk 0 JSON invalid, or shape x dtype disagrees with the byte length
  | 'too-many-pending'; // more partial messages in flight than allowed

export type DropReason = RejectReason | 'stalled' | 'closed';

export interface ChunkRejection {
  msgId: number;
  index: number;
  reason: RejectReason;
  detail: string;
}

export interface PartialDrop {
  msgId: number;
  reason: DropReason;
  receivedChunks: number;
  chunkCount: number;
  bytes: number;
}

export interface ReassemblerOptions {
  /** Largest data-channel message the transport accepts; no chunk may be bigger. */
  maxMessageSize: number;
  /** Largest single tensor accepted, in bytes. */
  maxTensorBytes: number;
  /** Sum of buffers held by partial messages at any one time. */
  maxPendingBytes: number;
  /** Partial messages in flight at once. */
  maxPendingMessages: number;
  /** A partial message with no new chunk for this long is dropped. */
  stallTimeoutMs: number;
}

export const DEFAULT_REASSEMBLER_OPTIONS: Omit<ReassemblerOptions, 'maxMessageSize'> = {
  maxTensorBytes: 1024 * 1024 * 1024,
  maxPendingBytes: 2 * 1024 * 1024 * 1024,
  maxPendingMessages: 64,
  stallTimeoutMs: 10_000,
};

export interface ReassemblerHandlers {
  tensor(t: IncomingTensor): void;
  rejected(r: ChunkRejection): void;
  dropped(d: PartialDrop): void;
}

interface Partial {
  msgId: number;
  count: number;
  chunkSize: number;
  totalBytes: number;
  dtype: DType;
  buffer: Uint8Array;
  seen: Uint8Array;
  received: number;
  descriptor: TensorDescriptor | null;
  lastActivity: number;
}

type TensorFrame = Extract<DecodedFrame, { type: 'tensor' }>;

/** How many dropped message ids to remember, so their trailing chunks are discarded without a new allocation. */
const POISON_MEMORY = 256;

export class Reassembler {
  private readonly partials = new Map<number, Partial>();
  private readonly poisoned = new Set<number>();
  private pendingBytes = 0;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;

  constructor(
    private readonly opts: ReassemblerOptions,
    private readonly on: ReassemblerHandlers,
    private readonly now: () => number = () => Date.now(),
  ) {}

  stats(): { pendingMessages: number; pendingBytes: number } {
    return { pendingMessages: this.partials.size, pendingBytes: this.pendingBytes };
  }

  accept(frame: TensorFrame, frameBytes: number): void {
    if (this.closed) return;
    const { msgId, index } = frame;
    if (this.poisoned.has(msgId)) return;

    const reject = (reason: RejectReason, detail: string) => {
      this.on.rejected({ msgId, index, reason, detail });
      this.poison(msgId);
      this.drop(msgId, reason);
    };

    if (frameBytes > this.opts.maxMessageSize) return reject('oversized', `chunk of ${frameBytes} bytes`);
    if (frame.totalBytes > this.opts.maxTensorBytes) {
      return reject('oversized', `tensor of ${frame.totalBytes} bytes > limit ${this.opts.maxTensorBytes}`);
    }
    if (frame.count !== chunkCountFor(frame.totalBytes, frame.chunkSize) || frame.chunkSize === 0) {
      return reject('out-of-range', `count ${frame.count} does not fit ${frame.totalBytes} bytes / ${frame.chunkSize}`);
    }
    if (frame.count > 1 && frame.chunkSize < MIN_CHUNK_SIZE) {
      return reject('out-of-range', `chunk size ${frame.chunkSize} below ${MIN_CHUNK_SIZE}`);
    }
    if (frame.chunkSize + TENSOR_HEADER_BYTES > this.opts.maxMessageSize) {
      return reject('oversized', `chunk size ${frame.chunkSize} exceeds the message size`);
    }
    if (index >= frame.count) return reject('out-of-range', `chunk ${index} of ${frame.count}`);

    let p = this.partials.get(msgId);
    if (!p) {
      if (this.partials.size >= this.opts.maxPendingMessages) {
        return reject('too-many-pending', `${this.partials.size} partial messages already`);
      }
      if (this.pendingBytes + frame.totalBytes > this.opts.maxPendingBytes) {
        return reject('oversized', `pending bytes would reach ${this.pendingBytes + frame.totalBytes}`);
      }
      p = {
        msgId,
        count: frame.count,
        chunkSize: frame.chunkSize,
        totalBytes: frame.totalBytes,
        dtype: frame.dtype,
        buffer: new Uint8Array(frame.totalBytes),
        seen: new Uint8Array(frame.count),
        received: 0,
        descriptor: null,
        lastActivity: this.now(),
      };
      this.partials.set(msgId, p);
      this.pendingBytes += frame.totalBytes;
      this.ensureSweep();
    } else if (p.count !== frame.count || p.chunkSize !== frame.chunkSize || p.totalBytes !== frame.totalBytes || p.dtype !== frame.dtype) {
      return reject('mismatch', 'header differs from the first chunk of this message');
    }

    if (p.seen[index]) return reject('duplicate', `chunk ${index} twice`);
    const offset = index * p.chunkSize;
    const expected = Math.min(p.chunkSize, p.totalBytes - offset);
    if (frame.payload.byteLength !== expected) {
      return reject('mismatch', `chunk ${index} carries ${frame.payload.byteLength} bytes, expected ${expected}`);
    }
    if ((index === 0) !== (frame.descriptor !== null)) {
      return reject('bad-descriptor', 'the descriptor must travel in chunk 0 and only there');
    }
    if (frame.descriptor) {
      const d = parseDescriptor(frame.descriptor);
      if (!d) return reject('bad-descriptor', 'descriptor is not a valid tensor descriptor');
      const want = expectedByteLength(p.dtype, d.shape);
      if (want !== p.totalBytes) {
        return reject('bad-descriptor', `shape [${d.shape}] x ${p.dtype} is ${want} bytes, message has ${p.totalBytes}`);
      }
      p.descriptor = d;
    }

    p.buffer.set(frame.payload, offset);
    p.seen[index] = 1;
    p.received++;
    p.lastActivity = this.now();
    if (p.received === p.count) this.complete(p);
  }

  /** Frees every partial message (transport closed or peer declared dead). */
  clear(reason: DropReason = 'closed'): void {
    for (const msgId of [...this.partials.keys()]) this.drop(msgId, reason);
    this.stopSweep();
  }

  close(): void {
    this.clear('closed');
    this.closed = true;
  }

  /** Drops partials idle for longer than the stall timeout; also called by the internal sweep timer. */
  sweep(): void {
    const cutoff = this.now() - this.opts.stallTimeoutMs;
    for (const p of [...this.partials.values()]) {
      if (p.lastActivity <= cutoff) {
        this.poison(p.msgId);
        this.drop(p.msgId, 'stalled');
      }
    }
    if (this.partials.size === 0) this.stopSweep();
  }

  private complete(p: Partial): void {
    this.partials.delete(p.msgId);
    this.pendingBytes -= p.totalBytes;
    if (this.partials.size === 0) this.stopSweep();
    const d = p.descriptor;
    // Unreachable when chunk 0 was validated, kept so a logic slip cannot hand out a tensor without a shape.
    if (!d) return;
    this.on.tensor({ msgId: p.msgId, kind: d.kind, dtype: p.dtype, shape: d.shape, meta: d.meta, bytes: p.buffer });
  }

  private drop(msgId: number, reason: DropReason): void {
    const p = this.partials.get(msgId);
    if (!p) return;
    this.partials.delete(msgId);
    this.pendingBytes -= p.totalBytes;
    this.on.dropped({ msgId, reason, receivedChunks: p.received, chunkCount: p.count, bytes: p.totalBytes });
    if (this.partials.size === 0) this.stopSweep();
  }

  private poison(msgId: number): void {
    this.poisoned.add(msgId);
    if (this.poisoned.size > POISON_MEMORY) {
      const oldest = this.poisoned.values().next().value;
      if (oldest !== undefined) this.poisoned.delete(oldest);
    }
  }

  private ensureSweep(): void {
    if (this.sweepTimer) return;
    const every = Math.max(10, Math.min(1000, this.opts.stallTimeoutMs / 4));
    this.sweepTimer = setInterval(() => this.sweep(), every);
    unrefTimer(this.sweepTimer);
  }

  private stopSweep(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }
}

function parseDescriptor(bytes: Uint8Array): TensorDescriptor | null {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  const r = tensorDescriptorSchema.safeParse(json);
  return r.success ? r.data : null;
}
