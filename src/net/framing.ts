// Binary frames carried by one data-channel message each. Every message starts with a 4-byte preamble
// (magic, version, frame type) so a peer running another protocol version is rejected instead of misread.
//
// Tensor chunk layout (little-endian), 36-byte fixed header:
//   0 u16 magic | 2 u8 version | 3 u8 type=1 | 4 u32 msgId | 8 u32 chunkIndex | 12 u32 chunkCount
//   16 u32 chunkSize (payload bytes of every chunk but the last) | 20 f64 totalBytes | 28 u8 dtype | 29..31 zero
//   32 u32 descriptorLength | 36.. descriptor JSON (chunk 0 only) | payload
// Every chunk repeats msgId/count/size/total/dtype, so the receiver can reject a chunk that disagrees with the
// first one it saw for the same message; the descriptor (kind, shape, meta) travels once, in chunk 0.

import { dtypeCode, dtypeFromCode, type DType } from './dtype';

export const FRAME_MAGIC = 0x5754; // "TW" little-endian
export const FRAME_VERSION = 1;
export const TENSOR_HEADER_BYTES = 36;
export const PING_FRAME_BYTES = 16;
/** Cap on chunk 0's JSON descriptor; reserved in every chunk so all chunks but the last have one size. */
export const MAX_DESCRIPTOR_BYTES = 4096;
/** Below this, chunking is pointless overhead and a hostile peer could make the bitmap huge. */
export const MIN_CHUNK_SIZE = 1024;

export const FrameType = { tensor: 1, control: 2, ping: 3, pong: 4, bye: 5 } as const;

export type DecodedFrame =
  | {
      type: 'tensor';
      msgId: number;
      index: number;
      count: number;
      chunkSize: number;
      totalBytes: number;
      dtype: DType;
      descriptor: Uint8Array | null;
      payload: Uint8Array;
    }
  | { type: 'control'; json: Uint8Array }
  | { type: 'ping' | 'pong'; seq: number; time: number }
  | { type: 'bye' };

export class FrameError extends Error {
  override name = 'FrameError';
}

/** Payload bytes per chunk for a channel whose messages may be at most `maxMessageSize` bytes. */
export function chunkPayloadSize(maxMessageSize: number): number {
  const size = maxMessageSize - TENSOR_HEADER_BYTES - MAX_DESCRIPTOR_BYTES;
  if (size < MIN_CHUNK_SIZE) throw new FrameError(`max message size ${maxMessageSize} is too small for framing`);
  return size;
}

export function chunkCountFor(totalBytes: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(totalBytes / chunkSize));
}

function preamble(view: DataView, type: number): void {
  view.setUint16(0, FRAME_MAGIC, true);
  view.setUint8(2, FRAME_VERSION);
  view.setUint8(3, type);
}

/** One chunk as a single buffer: header, optional descriptor, then a copy of the payload slice. */
export function encodeTensorChunk(args: {
  msgId: number;
  index: number;
  count: number;
  chunkSize: number;
  totalBytes: number;
  dtype: DType;
  descriptor: Uint8Array | null;
  payload: Uint8Array;
}): Uint8Array {
  const descLen = args.descriptor?.byteLength ?? 0;
  const out = new Uint8Array(TENSOR_HEADER_BYTES + descLen + args.payload.byteLength);
  const view = new DataView(out.buffer);
  preamble(view, FrameType.tensor);
  view.setUint32(4, args.msgId, true);
  view.setUint32(8, args.index, true);
  view.setUint32(12, args.count, true);
  view.setUint32(16, args.chunkSize, true);
  view.setFloat64(20, args.totalBytes, true);
  view.setUint8(28, dtypeCode(args.dtype));
  view.setUint32(32, descLen, true);
  if (args.descriptor) out.set(args.descriptor, TENSOR_HEADER_BYTES);
  out.set(args.payload, TENSOR_HEADER_BYTES + descLen);
  return out;
}

export function encodeControlFrame(json: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + json.byteLength);
  preamble(new DataView(out.buffer), FrameType.control);
  out.set(json, 4);
  return out;
}

export function encodePingFrame(kind: 'ping' | 'pong', seq: number, time: number): Uint8Array {
  const out = new Uint8Array(PING_FRAME_BYTES);
  const view = new DataView(out.buffer);
  preamble(view, kind === 'ping' ? FrameType.ping : FrameType.pong);
  view.setUint32(4, seq >>> 0, true);
  view.setFloat64(8, time, true);
  return out;
}

export function encodeByeFrame(): Uint8Array {
  const out = new Uint8Array(4);
  preamble(new DataView(out.buffer), FrameType.bye);
  return out;
}

/** Parses one message; throws FrameError on anything structurally wrong. Semantic checks live in Reassembler. */
export function decodeFrame(bytes: Uint8Array): DecodedFrame {
  if (bytes.byteLength < 4) throw new FrameError(`frame of ${bytes.byteLength} bytes is shorter than the preamble`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0, true) !== FRAME_MAGIC) throw new FrameError('bad frame magic');
  if (view.getUint8(2) !== FRAME_VERSION) throw new FrameError(`unsupported frame version ${view.getUint8(2)}`);
  const type = view.getUint8(3);
  switch (type) {
    case FrameType.tensor: {
      if (bytes.byteLength < TENSOR_HEADER_BYTES) throw new FrameError('truncated tensor header');
      const dtype = dtypeFromCode(view.getUint8(28));
      if (!dtype) throw new FrameError(`unknown dtype code ${view.getUint8(28)}`);
      const descLen = view.getUint32(32, true);
      if (descLen > MAX_DESCRIPTOR_BYTES) throw new FrameError(`descriptor of ${descLen} bytes is too large`);
      if (TENSOR_HEADER_BYTES + descLen > bytes.byteLength) throw new FrameError('truncated descriptor');
      const totalBytes = view.getFloat64(20, true);
      if (!Number.isSafeInteger(totalBytes) || totalBytes < 0) throw new FrameError(`bad total length ${totalBytes}`);
      return {
        type: 'tensor',
        msgId: view.getUint32(4, true),
        index: view.getUint32(8, true),
        count: view.getUint32(12, true),
        chunkSize: view.getUint32(16, true),
        totalBytes,
        dtype,
        descriptor: descLen > 0 ? bytes.subarray(TENSOR_HEADER_BYTES, TENSOR_HEADER_BYTES + descLen) : null,
        payload: bytes.subarray(TENSOR_HEADER_BYTES + descLen),
      };
    }
    case FrameType.control:
      return { type: 'control', json: bytes.subarray(4) };
    case FrameType.ping:
    case FrameType.pong:
      if (bytes.byteLength !== PING_FRAME_BYTES) throw new FrameError('bad ping frame length');
      return {
        type: type === FrameType.ping ? 'ping' : 'pong',
        seq: view.getUint32(4, true),
        time: view.getFloat64(8, true),
      };
    case FrameType.bye:
      return { type: 'bye' };
    default:
      throw new FrameError(`unknown frame type ${type}`);
  }
}
