// An in-process RawChannel pair for fast unit tests of framing and swarm logic. It models what matters of a data
// channel: a max message size, an asynchronous ordered delivery, and a bufferedAmount that drains over time.
// Never the only test of anything that crosses a network.

import { Emitter } from './emitter';
import { MAX_MESSAGE_SIZE_CAP, type RawChannel, type RawChannelEvents } from './raw-channel';

export class MemoryChannel implements RawChannel {
  readonly events = new Emitter<RawChannelEvents>();
  readonly maxMessageSize: number;
  peer: MemoryChannel | null = null;
  private queued = 0;
  private low = 0;
  private open = true;

  constructor(maxMessageSize = MAX_MESSAGE_SIZE_CAP) {
    this.maxMessageSize = maxMessageSize;
  }

  get bufferedAmount(): number {
    return this.queued;
  }

  get isOpen(): boolean {
    return this.open;
  }

  setLowWaterMark(bytes: number): void {
    this.low = bytes;
  }

  send(bytes: Uint8Array): void {
    if (!this.open) throw new Error('send on a closed channel');
    if (bytes.byteLength > this.maxMessageSize) {
      throw new Error(`message of ${bytes.byteLength} bytes exceeds max message size ${this.maxMessageSize}`);
    }
    const copy = bytes.slice(); // the sender may reuse its buffer, as with a real channel
    this.queued += copy.byteLength;
    setTimeout(() => {
      const before = this.queued;
      this.queued -= copy.byteLength;
      if (before > this.low && this.queued <= this.low) this.events.emit('bufferedlow', undefined);
      // Like dc.close(), a close lets messages already queued drain first.
      if (this.peer?.open) this.peer.events.emit('message', copy);
    }, 0);
  }

  close(reason = 'closed locally'): void {
    if (!this.open) return;
    this.open = false;
    this.events.emit('close', { reason });
    const peer = this.peer;
    if (peer) setTimeout(() => peer.close('closed by peer'), 0);
  }

  /** Simulates a vanished peer: this side stops delivering and receiving without telling the other side. */
  vanish(): void {
    this.open = false;
    if (this.peer) this.peer.peer = null;
    this.peer = null;
  }
}

export function createMemoryChannelPair(maxMessageSize?: number): [MemoryChannel, MemoryChannel] {
  const a = new MemoryChannel(maxMessageSize);
  const b = new MemoryChannel(maxMessageSize);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
