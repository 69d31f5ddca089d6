// RawChannel over a standard RTCDataChannel. The same code serves the browser's native implementation and
// node-datachannel's polyfill in Node: both expose the W3C API, so nothing here imports a Node module.

import { Emitter } from './emitter';
import { MAX_MESSAGE_SIZE_CAP, type RawChannel, type RawChannelEvents } from './raw-channel';
import { unrefTimer } from './timers';

/** How long a clean close waits for the data channel to flush before tearing the peer connection down. */
const CLOSE_GRACE_MS = 1000;

export class RtcRawChannel implements RawChannel {
  readonly events = new Emitter<RawChannelEvents>();
  private closed = false;
  private readonly opened: Promise<void>;

  constructor(
    private readonly dc: RTCDataChannel,
    private readonly pc: RTCPeerConnection | null,
  ) {
    // Handlers go on synchronously: a message that arrives with no handler attached is dropped (loopback notes).
    dc.binaryType = 'arraybuffer';
    dc.onmessage = (ev: MessageEvent) => {
      const data: unknown = ev.data;
      if (data instanceof ArrayBuffer) this.events.emit('message', new Uint8Array(data));
      else if (ArrayBuffer.isView(data)) this.events.emit('message', new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      // Text messages are not part of the protocol: ignored rather than guessed at.
    };
    dc.onbufferedamountlow = () => this.events.emit('bufferedlow', undefined);
    dc.onclose = () => this.finish('data channel closed');
    dc.onerror = (ev: Event) => {
      const detail = (ev as RTCErrorEvent).error?.message ?? 'error';
      if (dc.readyState !== 'open') this.finish(`data channel error: ${detail}`);
    };
    if (pc) {
      pc.addEventListener('connectionstatechange', () => {
        if (pc.connectionState === 'failed' || pc.connectionState === 'closed') {
          this.finish(`peer connection ${pc.connectionState}`);
        }
      });
    }
    this.opened =
      dc.readyState === 'open'
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            dc.onopen = () => {
              this.events.emit('open', undefined);
              resolve();
            };
            this.events.once('close', ({ reason }) => reject(new Error(reason)));
          });
    this.opened.catch(() => undefined);
  }

  /** Resolves when the data channel is open; rejects if it closes first. */
  whenOpen(): Promise<void> {
    return this.opened;
  }

  get maxMessageSize(): number {
    const negotiated = this.pc?.sctp?.maxMessageSize;
    // 0 means "unlimited" in the spec; clamp both that and large values to the measured safe size.
    if (!negotiated || !Number.isFinite(negotiated)) return MAX_MESSAGE_SIZE_CAP;
    return Math.min(negotiated, MAX_MESSAGE_SIZE_CAP);
  }

  get bufferedAmount(): number {
    return this.dc.bufferedAmount;
  }

  get isOpen(): boolean {
    return !this.closed && this.dc.readyState === 'open';
  }

  setLowWaterMark(bytes: number): void {
    this.dc.bufferedAmountLowThreshold = bytes;
  }

  send(bytes: Uint8Array): void {
    if (!this.isOpen) throw new Error('send on a closed channel');
    if (bytes.byteLength > this.maxMessageSize) {
      throw new Error(`message of ${bytes.byteLength} bytes exceeds max message size ${this.maxMessageSize}`);
    }
    // The DOM typings want an ArrayBuffer-backed view; ours always are (never SharedArrayBuffer).
    this.dc.send(bytes as Uint8Array<ArrayBuffer>);
  }

  close(reason = 'closed locally'): void {
    if (this.closed) return;
    const pc = this.pc;
    if (this.dc.readyState === 'open' || this.dc.readyState === 'connecting') {
      // dc.close() lets queued messages drain first; the peer connection goes once it has, or after a grace period.
      const t = setTimeout(() => pc?.close(), CLOSE_GRACE_MS);
      unrefTimer(t);
      this.dc.addEventListener('close', () => {
        clearTimeout(t);
        pc?.close();
      });
      this.dc.close();
    } else {
      pc?.close();
    }
    this.finish(reason);
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.events.emit('close', { reason });
    if (this.pc && this.pc.connectionState !== 'closed' && this.dc.readyState === 'closed') this.pc.close();
  }
}
