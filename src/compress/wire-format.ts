// The wire format every codec payload shares (docs/compression.md "Wire formats"): a 16-byte little-endian header,
// then the codec's body in 32-bit words, so a payload is always a multiple of 4 bytes.
//
//   offset 0  u32  magic 0x43575354 ("TSWC")
//   offset 4  u8   format version (1)
//   offset 5  u8   codec kind: fp32 1, fp16 2, int8 3, int4 4, topk 5
//   offset 6  u8   rounding: 0 nearest (and every codec without rounding), 1 stochastic
//   offset 7  u8   reserved, 0
//   offset 8  u32  n, the tensor's element count
//   offset 12 u32  block (int8, int4), k (topk), 0 (fp32, fp16)
//
// Bodies (words): fp32 n values; fp16 ceil(n/2) words of two halves (element 2w in the low half, a last odd half
// is 0); int8 / int4 nb = ceil(n/block) f32 scales, then ceil(n/4) / ceil(n/8) words of two's-complement codes
// (low bits first, padding codes 0); topk k u32 indices (strictly increasing) then k f32 values.
import type { CodecKind, CodecSpec } from './spec';

export const HEADER_BYTES = 16;
export const WIRE_MAGIC = 0x43575354;
export const WIRE_VERSION = 1;

export const KIND_CODES: Readonly<Record<CodecKind, number>> = { fp32: 1, fp16: 2, int8: 3, int4: 4, topk: 5 };

export interface WireHeader {
  magic: number;
  version: number;
  kind: number;
  rounding: number;
  reserved: number;
  n: number;
  param: number;
}

/** Largest n a payload can describe (n is a u32, and a payload must stay addressable). */
export const MAX_ELEMENTS = 2 ** 30;

/** Values per top-k payload: ceil(fraction * n), at least 1, at most n. The product is rounded to 12 significant digits
 * first, so 0.1 * 30 is 3 and not 4 (float64 gives 3.0000000000000004). */
export function topkCount(fraction: number, n: number): number {
  return Math.min(n, Math.max(1, Math.ceil(Number((fraction * n).toPrecision(12)))));
}

/** Blocks of a blockwise codec over n values. */
export function blockCount(n: number, block: number): number {
  return Math.ceil(n / block);
}

/** Body layout of a payload of n values, in 32-bit words. */
export interface BodyLayout {
  /** Words after the header. */
  words: number;
  /** Blockwise: scales at word 0 .. blocks, codes from codeOffset. */
  blocks: number;
  codeOffset: number;
  /** Top-k: values sent. */
  k: number;
  /** The header's last field. */
  param: number;
}

export function bodyLayout(spec: CodecSpec, n: number): BodyLayout {
  switch (spec.kind) {
    case 'fp32':
      return { words: n, blocks: 0, codeOffset: 0, k: 0, param: 0 };
    case 'fp16':
      return { words: Math.ceil(n / 2), blocks: 0, codeOffset: 0, k: 0, param: 0 };
    case 'int8':
    case 'int4': {
      const blocks = blockCount(n, spec.block);
      const perWord = spec.kind === 'int8' ? 4 : 8;
      return { words: blocks + Math.ceil(n / perWord), blocks, codeOffset: blocks, k: 0, param: spec.block };
    }
    case 'topk': {
      const k = topkCount(spec.fraction, n);
      return { words: 2 * k, blocks: 0, codeOffset: 0, k, param: k };
    }
  }
}

/** Exact payload length for n values, header included. */
export function payloadBytes(spec: CodecSpec, n: number): number {
  return HEADER_BYTES + 4 * bodyLayout(spec, n).words;
}

/** Wire bits per value (header and scales included): the bench's table. */
export function bitsPerValue(spec: CodecSpec, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`bitsPerValue: n must be a positive integer, got ${n}`);
  return (8 * payloadBytes(spec, n)) / n;
}

export function roundingCode(spec: CodecSpec): number {
  return (spec.kind === 'int8' || spec.kind === 'int4') && spec.rounding === 'stochastic' ? 1 : 0;
}

/** The codec as configured, for messages: `int8 (block 64, nearest)`, `topk (fraction 0.01)`. */
export function describeCodec(spec: CodecSpec): string {
  switch (spec.kind) {
    case 'fp32':
    case 'fp16':
      return spec.kind;
    case 'int8':
    case 'int4':
      return `${spec.kind} (block ${spec.block}, ${spec.rounding})`;
    case 'topk':
      return `topk (fraction ${spec.fraction})`;
  }
}

/** A payload with its header written; the caller fills the body (bytes HEADER_BYTES ..). */
export function newPayload(spec: CodecSpec, n: number): Uint8Array {
  const layout = bodyLayout(spec, n);
  const out = new Uint8Array(HEADER_BYTES + 4 * layout.words);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, WIRE_MAGIC, true);
  dv.setUint8(4, WIRE_VERSION);
  dv.setUint8(5, KIND_CODES[spec.kind]);
  dv.setUint8(6, roundingCode(spec));
  dv.setUint8(7, 0);
  dv.setUint32(8, n, true);
  dv.setUint32(12, layout.param, true);
  return out;
}

/** The header fields of a payload of at least HEADER_BYTES bytes. */
export function readHeader(payload: Uint8Array): WireHeader {
  const dv = new DataView(payload.buffer, payload.byteOffset, HEADER_BYTES);
  return {
    magic: dv.getUint32(0, true),
    version: dv.getUint8(4),
    kind: dv.getUint8(5),
    rounding: dv.getUint8(6),
    reserved: dv.getUint8(7),
    n: dv.getUint32(8, true),
    param: dv.getUint32(12, true),
  };
}

/** The body as 32-bit words (a view when the payload is 4-byte aligned, else a copy). */
export function bodyWords(payload: Uint8Array, words: number): Uint32Array {
  const start = payload.byteOffset + HEADER_BYTES;
  if (start % 4 === 0) return new Uint32Array(payload.buffer, start, words);
  return new Uint32Array(payload.slice(HEADER_BYTES, HEADER_BYTES + 4 * words).buffer);
}
