// Host-side validation of a payload before any of it reaches the GPU: the header, the length, and the small parts
// (block scales, top-k indices and values; the codes only where a rule needs them). Every refusal is a CodecError
// naming the codec and the problem; a payload that passes decodes to finite values (fp32/fp16 carry what they were
// given, like a real cast: the header and length are all they can be checked for).
import { CodecError } from './codec-error';
import type { CodecSpec } from './spec';
import {
  bodyLayout,
  bodyWords,
  describeCodec,
  HEADER_BYTES,
  KIND_CODES,
  MAX_ELEMENTS,
  readHeader,
  roundingCode,
  WIRE_MAGIC,
  WIRE_VERSION,
  type BodyLayout,
} from './wire-format';

const F32_EXP = 0x7f800000;
const F32_SIGN = 0x80000000;
const F32_MIN_NORMAL = 0x00800000;

export interface CheckedPayload {
  body: Uint32Array;
  layout: BodyLayout;
}

/** n as a codec argument: an integer in [1, MAX_ELEMENTS] (a caller's bug otherwise, not a bad payload). */
export function checkCount(spec: CodecSpec, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_ELEMENTS)
    throw new Error(`${describeCodec(spec)} codec: n must be an integer in [1, ${MAX_ELEMENTS}], got ${n}`);
}

function kindName(code: number): string {
  const hit = Object.entries(KIND_CODES).find(([, c]) => c === code);
  return hit ? hit[0] : `unknown kind ${code}`;
}

function hex(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

/** The f32 whose bits are `bits`, for messages. */
function f32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

/** Largest scale an encoder can produce for this qmax: f32(f32max * f32(1/qmax)); a larger one would decode to inf. */
function maxScaleBits(qmax: number): number {
  const s = new Float32Array([3.4028234663852886e38 * Math.fround(1 / qmax)]);
  return new Uint32Array(s.buffer)[0];
}
const MAX_SCALE_BITS: Readonly<Record<'int8' | 'int4', number>> = { int8: maxScaleBits(127), int4: maxScaleBits(7) };

/** Validates `payload` as this codec's payload of n values; returns its body words. Throws CodecError. */
export function checkPayload(spec: CodecSpec, payload: Uint8Array, n: number): CheckedPayload {
  checkCount(spec, n);
  const fail = (problem: string): never => {
    throw new CodecError(spec.kind, problem, describeCodec(spec));
  };
  if (payload.byteLength < HEADER_BYTES) fail(`payload is ${payload.byteLength} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const h = readHeader(payload);
  if (h.magic !== WIRE_MAGIC) fail(`bad magic ${hex(h.magic)} (expected ${hex(WIRE_MAGIC)}): not a codec payload`);
  if (h.version !== WIRE_VERSION) fail(`wire format version ${h.version}, this peer reads version ${WIRE_VERSION}`);
  if (h.kind !== KIND_CODES[spec.kind]) fail(`payload is ${kindName(h.kind)}, expected ${spec.kind}`);
  if (h.rounding !== roundingCode(spec)) fail(`rounding code ${h.rounding}, expected ${roundingCode(spec)}`);
  if (h.reserved !== 0) fail(`reserved header byte is ${h.reserved}, expected 0`);
  if (h.n !== n) fail(`payload holds n=${h.n} values, expected ${n}`);
  const layout = bodyLayout(spec, n);
  if (h.param !== layout.param) {
    const what = spec.kind === 'topk' ? 'k' : spec.kind === 'int8' || spec.kind === 'int4' ? 'block' : 'header parameter';
    fail(`${what} ${h.param} in the header, expected ${layout.param}`);
  }
  const expected = HEADER_BYTES + 4 * layout.words;
  if (payload.byteLength !== expected) fail(`payload is ${payload.byteLength} bytes, expected ${expected} for n=${n}`);
  const body = bodyWords(payload, layout.words);
  if (spec.kind === 'fp16' && n % 2 === 1 && body[layout.words - 1] >>> 16 !== 0) fail('padding half after the last value is not 0');
  if (spec.kind === 'int8' || spec.kind === 'int4') checkBlockwise(spec.kind, spec.block, body, layout, n, fail);
  if (spec.kind === 'topk') checkTopk(body, layout.k, n, fail);
  return { body, layout };
}

function checkBlockwise(kind: 'int8' | 'int4', block: number, body: Uint32Array, layout: BodyLayout, n: number, fail: (p: string) => never): void {
  const bits = kind === 'int8' ? 8 : 4;
  const perWord = 32 / bits;
  const mask = (1 << bits) - 1;
  const impossible = 1 << (bits - 1); // -128 / -8: outside [-qmax, qmax]
  const code = (i: number): number => (body[layout.codeOffset + Math.floor(i / perWord)] >>> ((i % perWord) * bits)) & mask;
  const zeroBlocks: number[] = [];
  for (let b = 0; b < layout.blocks; b++) {
    const s = body[b];
    if ((s & F32_EXP) === F32_EXP) fail(`scale of block ${b} is ${f32(s)} (not finite)`);
    if ((s & F32_SIGN) !== 0) fail(`scale of block ${b} is negative (${f32(s)})`);
    if (s === 0) zeroBlocks.push(b);
    else if (s < F32_MIN_NORMAL) fail(`scale of block ${b} is subnormal (${f32(s)}): no encoder makes it`);
    else if (s > MAX_SCALE_BITS[kind]) fail(`scale of block ${b} is ${f32(s)}, larger than any finite input gives (its values would overflow)`);
  }
  // Codes: none may be the impossible -2^(bits-1), padding codes after n are 0, a zero-scale block's codes are 0.
  const codes = body.subarray(layout.codeOffset);
  if (kind === 'int8') {
    const bytes = new Uint8Array(codes.buffer, codes.byteOffset, n);
    const at = bytes.indexOf(0x80);
    if (at >= 0) fail(`code ${at} is -128, outside [-127, 127]`);
  } else {
    for (let w = 0; w < codes.length; w++) {
      const t = (codes[w] ^ 0x88888888) >>> 0; // a nibble equal to 8 becomes 0
      if ((((t - 0x11111111) >>> 0) & ~t & 0x88888888) !== 0) {
        for (let j = 0; j < 8; j++) if (((codes[w] >>> (4 * j)) & 0xf) === 8) fail(`code ${w * 8 + j} is -8, outside [-7, 7]`);
      }
    }
  }
  for (let i = n; i < codes.length * perWord; i++) if (code(i) !== 0) fail(`padding code ${i} after the last value is not 0`);
  for (const b of zeroBlocks) {
    const end = Math.min(n, (b + 1) * block);
    for (let i = b * block; i < end; i++) {
      if (code(i) !== 0) fail(`block ${b} has scale 0 but nonzero code ${code(i) & impossible ? code(i) - 2 * impossible : code(i)} at ${i}`);
    }
  }
}

function checkTopk(body: Uint32Array, k: number, n: number, fail: (p: string) => never): void {
  let prev = -1;
  for (let j = 0; j < k; j++) {
    const i = body[j];
    if (i >= n) fail(`index ${j} is ${i}, out of range for n=${n}`);
    if (i <= prev) fail(`indices not strictly increasing: index ${j} is ${i} after ${prev}`);
    prev = i;
    const v = body[k + j];
    if ((v & F32_EXP) === F32_EXP) fail(`value ${j} (index ${i}) is ${f32(v)} (not finite)`);
  }
}
