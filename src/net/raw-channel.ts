// The message-level link under the framed transport: ordered, reliable, binary messages of bounded size.
// Implementations: RtcRawChannel (an RTCDataChannel, native in the browser or node-datachannel's polyfill in
// Node) and the in-memory pair for unit tests.

import type { Emitter } from './emitter';

export type RawChannelEvents = {
  /** The channel became open (never fires for a channel that is open when handed over). */
  open: undefined;
  message: Uint8Array;
  /** bufferedAmount fell to or below the low-water mark. */
  bufferedlow: undefined;
  close: { reason: string };
};

export interface RawChannel {
  /** Largest message `send` accepts, in bytes (negotiated; 256 KiB on every stack measured here). */
  readonly maxMessageSize: number;
  /** Bytes queued for sending and not yet handed to the network. */
  readonly bufferedAmount: number;
  readonly isOpen: boolean;
  readonly events: Emitter<RawChannelEvents>;
  /** Threshold for the `bufferedlow` event. */
  setLowWaterMark(bytes: number): void;
  /** Queues one message; throws if closed or larger than maxMessageSize. Never blocks. */
  send(bytes: Uint8Array): void;
  /** Idempotent. Emits `close` once. */
  close(reason?: string): void;
}

/** Negotiated max message sizes above 256 KiB only hide buffering from bufferedAmount (see the loopback notes). */
export const MAX_MESSAGE_SIZE_CAP = 256 * 1024;
