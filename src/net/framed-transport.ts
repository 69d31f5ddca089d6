// Transport over a RawChannel: tensors split into chunks under the max message size and reassembled on the
// other side, JSON control payloads checked against the envelope (and an optional codec), heartbeats, and a goodbye frame so a
// clean close is told apart from a dead peer.

import { ChannelClosedError, DEFAULT_BACKPRESSURE, waitForRoom, type BackpressureOptions } from './backpressure';
import { expectedByteLength, DTYPES } from './dtype';
import { Emitter, type Unsubscribe } from './emitter';
import {
  chunkCountFor,
  chunkPayloadSize,
  decodeFrame,
  encodeByeFrame,
  encodeControlFrame,
  encodePingFrame,
  encodeTensorChunk,
  FrameError,
  MAX_DESCRIPTOR_BYTES,
} from './framing';
import { DEFAULT_HEARTBEAT, Heartbeat, type HeartbeatOptions } from './heartbeat';
import { Inbox, iterate } from './inbox';
import { checkControlPayload, opaqueControl, readControlPayload, type ControlCodec, type ControlPayload } from './control-envelope';
import type { RawChannel } from './raw-channel';
import { DEFAULT_REASSEMBLER_OPTIONS, Reassembler, type PartialDrop, type ReassemblerOptions } from './reassembler';
import { tensorDescriptorSchema, type IncomingTensor, type OutgoingTensor } from './tensor';
import { WIRE_CONTROL, WIRE_LINK, WireMeter } from './wire-meter';

/** After a local close: how long to wait for the goodbye to leave the send buffer, then for it to settle. */
const BYE_DRAIN_MS = 500;
const BYE_SETTLE_MS = 20;
import type { CloseInfo, CloseReason, ProtocolError, Transport, TransportStats } from './transport';

export interface FramedTransportOptions {
  backpressure: BackpressureOptions;
  heartbeat: HeartbeatOptions;
  reassembly: Omit<ReassemblerOptions, 'maxMessageSize'>;
  /** Frames we cannot decode before the link is closed as 'protocol'. Chunk rejections count too. */
  maxProtocolErrors: number;
  /** Checks control payloads both ways after the envelope (the layer above's schema); default: envelope only. */
  control: ControlCodec<unknown>;
  /** Also counts the bytes sent into this meter (shared by a peer's transports); the transport's own count is in stats(). */
  meter: WireMeter | null;
}

export const DEFAULT_TRANSPORT_OPTIONS: FramedTransportOptions = {
  backpressure: DEFAULT_BACKPRESSURE,
  heartbeat: DEFAULT_HEARTBEAT,
  reassembly: DEFAULT_REASSEMBLER_OPTIONS,
  maxProtocolErrors: 16,
  control: opaqueControl,
  meter: null,
};

export type TransportOptionsInput = {
  backpressure?: Partial<BackpressureOptions>;
  heartbeat?: Partial<HeartbeatOptions>;
  reassembly?: Partial<Omit<ReassemblerOptions, 'maxMessageSize'>>;
  maxProtocolErrors?: number;
  control?: ControlCodec<unknown>;
  meter?: WireMeter;
};

export function resolveTransportOptions(input: TransportOptionsInput = {}): FramedTransportOptions {
  return {
    backpressure: { ...DEFAULT_BACKPRESSURE, ...input.backpressure },
    heartbeat: { ...DEFAULT_HEARTBEAT, ...input.heartbeat },
    reassembly: { ...DEFAULT_REASSEMBLER_OPTIONS, ...input.reassembly },
    maxProtocolErrors: input.maxProtocolErrors ?? DEFAULT_TRANSPORT_OPTIONS.maxProtocolErrors,
    control: input.control ?? DEFAULT_TRANSPORT_OPTIONS.control,
    meter: input.meter ?? null,
  };
}

type Events = { close: CloseInfo; drop: PartialDrop; protocol: ProtocolError };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class FramedTransport implements Transport {
  private readonly events = new Emitter<Events>();
  private readonly tensorsIn = new Inbox<IncomingTensor>();
  private readonly controlIn = new Inbox<ControlPayload>();
  private readonly reassembler: Reassembler;
  private readonly heartbeat: Heartbeat;
  private readonly opts: FramedTransportOptions;
  private readonly chunkSize: number;
  private sendChain: Promise<void> = Promise.resolve();
  private nextMsgId = 1;
  private protocolErrors = 0;
  private info: CloseInfo | null = null;
  private readonly counters = { bytesSent: 0, bytesReceived: 0, tensorsSent: 0, tensorsReceived: 0 };
  /** Bytes sent per tensor kind, WIRE_CONTROL and WIRE_LINK (frames included). */
  private readonly sent = new WireMeter();

  constructor(
    readonly peerId: string,
    private readonly raw: RawChannel,
    options: TransportOptionsInput = {},
  ) {
    this.opts = resolveTransportOptions(options);
    this.chunkSize = chunkPayloadSize(raw.maxMessageSize);
    raw.setLowWaterMark(this.opts.backpressure.lowWaterMark);
    this.reassembler = new Reassembler(
      { ...this.opts.reassembly, maxMessageSize: raw.maxMessageSize },
      {
        tensor: (t) => {
          this.counters.tensorsReceived++;
          this.tensorsIn.deliver(t);
        },
        rejected: (r) => this.protocolError({ kind: 'chunk', ...r }),
        dropped: (d) => this.events.emit('drop', d),
      },
    );
    this.heartbeat = new Heartbeat(
      this.opts.heartbeat,
      (seq, time) => this.sendFrame(encodePingFrame('ping', seq, time), WIRE_LINK),
      (silent) => this.shutdown('dead', `nothing heard for ${Math.round(silent)} ms`),
    );
    raw.events.on('message', (bytes) => this.receive(bytes));
    raw.events.on('close', ({ reason }) => this.shutdown('channel', reason));
    // Built before the channel opens, so no early message can arrive without a handler; heartbeats start on open.
    if (raw.isOpen) this.heartbeat.start();
    else raw.events.once('open', () => this.heartbeat.start());
  }

  get isOpen(): boolean {
    return this.info === null;
  }

  get closeInfo(): CloseInfo | null {
    return this.info;
  }

  sendTensor(tensor: OutgoingTensor): Promise<void> {
    let plan: { bytes: Uint8Array; descriptor: Uint8Array; count: number };
    try {
      plan = this.plan(tensor);
    } catch (err) {
      return Promise.reject(err);
    }
    const msgId = this.nextMsgId;
    this.nextMsgId = (this.nextMsgId + 1) >>> 0 || 1;
    // Tensors go out one after another, so chunks of two tensors never interleave and arrival order is send order.
    const run = this.sendChain.then(() => this.pump(msgId, tensor, plan));
    this.sendChain = run.catch(() => undefined);
    return run;
  }

  sendControl(msg: ControlPayload): void {
    const checked = checkControlPayload(msg);
    if (!checked.ok) throw new Error(`invalid control message: ${checked.error}`);
    const typed = this.opts.control.parse(checked.value.payload);
    if (!typed.ok) throw new Error(`invalid control message: ${typed.error}`);
    const json = encoder.encode(checked.value.json);
    if (!this.isOpen) throw new ChannelClosedError(`transport to ${this.peerId} is closed`);
    this.sendFrame(encodeControlFrame(json), WIRE_CONTROL);
  }

  onTensor(handler: (t: IncomingTensor) => void): Unsubscribe {
    return this.tensorsIn.subscribe(handler);
  }

  onControl(handler: (msg: ControlPayload) => void): Unsubscribe {
    return this.controlIn.subscribe(handler);
  }

  onClose(handler: (info: CloseInfo) => void): Unsubscribe {
    if (this.info) {
      const info = this.info;
      queueMicrotask(() => handler(info));
      return () => undefined;
    }
    return this.events.on('close', handler);
  }

  onDrop(handler: (drop: PartialDrop) => void): Unsubscribe {
    return this.events.on('drop', handler);
  }

  onProtocolError(handler: (err: ProtocolError) => void): Unsubscribe {
    return this.events.on('protocol', handler);
  }

  tensors(): AsyncIterableIterator<IncomingTensor> {
    return iterate(
      (h) => this.onTensor(h),
      (h) => this.events.on('close', () => h()),
      () => !this.isOpen,
    );
  }

  ping(timeoutMs = 5000): Promise<number> {
    if (!this.isOpen) return Promise.reject(new ChannelClosedError('transport closed'));
    return this.heartbeat.ping(timeoutMs);
  }

  stats(): TransportStats {
    return {
      ...this.counters,
      sentByKind: this.sent.snapshot(),
      ...this.reassembler.stats(),
      rttMs: this.heartbeat.rttMs,
      silentForMs: this.heartbeat.silentForMs(),
    };
  }

  close(): void {
    if (!this.isOpen) return;
    let byeQueued = false;
    try {
      if (this.raw.isOpen) {
        const bye = encodeByeFrame();
        this.raw.send(bye);
        this.count(WIRE_LINK, bye.byteLength);
        byeQueued = true;
      }
    } catch {
      // Already going down.
    }
    // Closing the data channel right behind the goodbye can let the other side see the channel close before the
    // goodbye (node-datachannel delivers them on different paths), and call a clean close 'channel'. So the link is
    // closed for us now, and the channel itself once the goodbye has left this side's buffer (bounded wait).
    this.shutdown('local', 'closed locally', byeQueued);
  }

  private closeRawAfterDrain(detail: string): void {
    const deadline = Date.now() + BYE_DRAIN_MS;
    const poll = () => {
      if (!this.raw.isOpen || this.raw.bufferedAmount === 0 || Date.now() >= deadline) {
        // One more turn so the goodbye is on the wire before the close frame.
        // Not unref'd: bounded (< BYE_DRAIN_MS + BYE_SETTLE_MS), and the channel must really close.
        setTimeout(() => this.raw.close(detail), BYE_SETTLE_MS);
        return;
      }
      setTimeout(poll, 5);
    };
    poll();
  }

  private plan(t: OutgoingTensor): { bytes: Uint8Array; descriptor: Uint8Array; count: number } {
    if (!DTYPES.includes(t.dtype)) throw new Error(`unknown dtype ${String(t.dtype)}`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const want = expectedByteLength(t.dtype, t.shape);
    if (want !== bytes.byteLength) {
      throw new Error(`shape [${t.shape.join(',')}] x ${t.dtype} needs ${want} bytes, data has ${bytes.byteLength}`);
    }
    const desc = tensorDescriptorSchema.parse({ kind: t.kind, shape: [...t.shape], meta: t.meta ?? {} });
    const descriptor = encoder.encode(JSON.stringify(desc));
    if (descriptor.byteLength > MAX_DESCRIPTOR_BYTES) {
      throw new Error(`tensor descriptor of ${descriptor.byteLength} bytes exceeds ${MAX_DESCRIPTOR_BYTES}`);
    }
    if (bytes.byteLength > this.opts.reassembly.maxTensorBytes) {
      throw new Error(`tensor of ${bytes.byteLength} bytes exceeds the ${this.opts.reassembly.maxTensorBytes} byte limit`);
    }
    return { bytes, descriptor, count: chunkCountFor(bytes.byteLength, this.chunkSize) };
  }

  private async pump(msgId: number, t: OutgoingTensor, plan: { bytes: Uint8Array; descriptor: Uint8Array; count: number }): Promise<void> {
    const { bytes, descriptor, count } = plan;
    for (let index = 0; index < count; index++) {
      if (!this.isOpen) throw new ChannelClosedError(`transport to ${this.peerId} closed: ${this.info?.detail}`);
      if (this.raw.bufferedAmount > this.opts.backpressure.highWaterMark) {
        await waitForRoom(this.raw, this.opts.backpressure);
        // The wait can end because the link closed (a closing channel drops its queue, which reads as room): say why
        // it closed rather than let the raw channel's own "closed" error hide the reason.
        if (!this.isOpen) throw new ChannelClosedError(`transport to ${this.peerId} closed: ${this.info?.detail}`);
      }
      const start = index * this.chunkSize;
      const frame = encodeTensorChunk({
        msgId,
        index,
        count,
        chunkSize: this.chunkSize,
        totalBytes: bytes.byteLength,
        dtype: t.dtype,
        descriptor: index === 0 ? descriptor : null,
        payload: bytes.subarray(start, Math.min(start + this.chunkSize, bytes.byteLength)),
      });
      this.sendFrame(frame, t.kind);
    }
    this.counters.tensorsSent++;
  }

  private sendFrame(frame: Uint8Array, key: string): void {
    try {
      this.raw.send(frame);
    } catch (err) {
      // The channel can close underneath us (the other side or the network) before its close event reaches us:
      // that is this link closing, not a send bug, and every caller gets the same ChannelClosedError.
      if (this.raw.isOpen) throw err;
      const detail = `channel closed under a send: ${err instanceof Error ? err.message : String(err)}`;
      this.shutdown('channel', detail);
      throw new ChannelClosedError(`transport to ${this.peerId} closed: ${detail}`);
    }
    this.count(key, frame.byteLength);
  }

  private count(key: string, bytes: number): void {
    this.counters.bytesSent += bytes;
    this.sent.add(key, bytes);
    this.opts.meter?.add(key, bytes);
  }

  private receive(bytes: Uint8Array): void {
    if (!this.isOpen) return;
    this.heartbeat.heard();
    this.counters.bytesReceived += bytes.byteLength;
    let frame;
    try {
      frame = decodeFrame(bytes);
    } catch (err) {
      this.protocolError({ kind: 'frame', detail: err instanceof FrameError ? err.message : String(err) });
      return;
    }
    switch (frame.type) {
      case 'tensor':
        this.reassembler.accept(frame, bytes.byteLength);
        return;
      case 'control':
        this.receiveControl(frame.json);
        return;
      case 'ping':
        try {
          this.sendFrame(encodePingFrame('pong', frame.seq, frame.time), WIRE_LINK);
        } catch {
          // Closing; nothing to answer.
        }
        return;
      case 'pong':
        this.heartbeat.pong(frame.seq, frame.time);
        return;
      case 'bye':
        this.shutdown('remote', 'peer closed the link');
        return;
    }
  }

  private receiveControl(json: Uint8Array): void {
    const r = readControlPayload(decoder.decode(json));
    if (!r.ok) {
      this.protocolError({ kind: 'control', detail: r.error });
      return;
    }
    const typed = this.opts.control.parse(r.value.payload);
    if (!typed.ok) {
      this.protocolError({ kind: 'control', detail: typed.error });
      return;
    }
    this.controlIn.deliver(r.value.payload);
  }

  private protocolError(err: ProtocolError): void {
    this.events.emit('protocol', err);
    this.protocolErrors++;
    if (this.protocolErrors >= this.opts.maxProtocolErrors) {
      this.shutdown('protocol', `${this.protocolErrors} protocol errors, last: ${err.kind}`);
    }
  }

  private shutdown(reason: CloseReason, detail: string, drainFirst = false): void {
    if (this.info) return;
    this.info = { reason, detail };
    this.heartbeat.stop();
    this.reassembler.close();
    this.tensorsIn.clear();
    this.controlIn.clear();
    if (drainFirst) this.closeRawAfterDrain(detail);
    else this.raw.close(detail);
    this.events.emit('close', this.info);
  }
}
