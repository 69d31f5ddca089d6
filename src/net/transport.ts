// The one interface swarm code talks to for a peer-to-peer link: tensors and control messages, typed, with
// backpressure, dead-peer detection and a close event. Implemented by FramedTransport over any RawChannel
// (browser RTCDataChannel, node-datachannel, or the in-memory pair).

import type { Unsubscribe } from './emitter';
import type { ControlPayload } from './control-envelope';
import type { ChunkRejection, PartialDrop } from './reassembler';
import type { IncomingTensor, OutgoingTensor } from './tensor';

export type CloseReason =
  | 'local' // close() was called here
  | 'remote' // the peer said goodbye
  | 'dead' // no frame heard within the heartbeat's dead-after window
  | 'channel' // the underlying data channel or peer connection closed or failed
  | 'protocol'; // the peer kept sending frames we cannot accept

export interface CloseInfo {
  reason: CloseReason;
  detail: string;
}

export type ProtocolError = { kind: 'frame'; detail: string } | { kind: 'control'; detail: string } | ({ kind: 'chunk' } & ChunkRejection);

export interface TransportStats {
  /** Every frame sent, framing included. */
  bytesSent: number;
  /** bytesSent by what the frames carried: the tensor kind, WIRE_CONTROL or WIRE_LINK (src/net/wire-meter.ts). */
  sentByKind: Record<string, number>;
  bytesReceived: number;
  tensorsSent: number;
  tensorsReceived: number;
  /** Partial incoming messages and the bytes their buffers hold. */
  pendingMessages: number;
  pendingBytes: number;
  /** Smoothed heartbeat round trip, ms; null before the first pong. */
  rttMs: number | null;
  /** ms since anything was heard from the peer. */
  silentForMs: number;
}

export interface Transport {
  readonly peerId: string;
  readonly isOpen: boolean;
  /** Set once closed. */
  readonly closeInfo: CloseInfo | null;
  /** Resolves when the tensor has been handed to the channel (under backpressure), not when it is received. */
  sendTensor(tensor: OutgoingTensor): Promise<void>;
  /** Sends at once, ahead of queued tensor chunks not yet handed to the channel. Throws if closed or invalid. */
  sendControl(msg: ControlPayload): void;
  /** Tensors that arrive before the first subscriber are kept and delivered to it. */
  onTensor(handler: (t: IncomingTensor) => void): Unsubscribe;
  onControl(handler: (msg: ControlPayload) => void): Unsubscribe;
  onClose(handler: (info: CloseInfo) => void): Unsubscribe;
  /** A partial incoming message was abandoned and its memory freed. */
  onDrop(handler: (drop: PartialDrop) => void): Unsubscribe;
  onProtocolError(handler: (err: ProtocolError) => void): Unsubscribe;
  /** Async iteration over incoming tensors; ends when the transport closes. */
  tensors(): AsyncIterableIterator<IncomingTensor>;
  /** One explicit round trip, ms. */
  ping(timeoutMs?: number): Promise<number>;
  stats(): TransportStats;
  close(): void;
}
