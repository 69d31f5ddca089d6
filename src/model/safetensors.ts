// safetensors reader/writer (https://github.com/huggingface/safetensors), pure TypeScript for browser and Node.
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
//   { "__metadata__": { str: str }, "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ... }
// then the data section; offsets are relative to the start of the data section.
//
// The writer emits F32 only, tensors contiguous in the given order, header padded with spaces to a multiple of 8
// (like the reference implementation). The reader is strict: it refuses everything the reference refuses
// (truncated files, oversized headers, holes/overlaps in the data section, size mismatches, duplicate names) and
// converts F16/BF16/F64 to f32; any other dtype is refused.

export interface StTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface DecodedSafetensors {
  /** dtype is the stored one ('F32', 'F16', 'BF16' or 'F64'); data is always converted to f32. */
  tensors: Map<string, { shape: number[]; dtype: string; data: Float32Array }>;
  metadata: Record<string, string>;
}

/** Same bound as the reference implementation (MAX_HEADER_SIZE). */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Bytes per element of the dtypes this reader can convert to f32. */
const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------------- writer

export function encodeSafetensors(tensors: StTensor[], metadata?: Record<string, string>): Uint8Array {
  // Null-prototype objects so that a name like "__proto__" is an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new Error('safetensors: metadata must be an object of string values');
    }
    const meta: Record<string, string> = Object.create(null);
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata value for "${k}" must be a string, got ${typeof v}`);
      meta[k] = v;
    }
    header[METADATA_KEY] = meta;
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0) throw new Error('safetensors: tensor name must be a non-empty string');
    if (t.name === METADATA_KEY) throw new Error(`safetensors: tensor name "${METADATA_KEY}" is reserved`);
    if (seen.has(t.name)) throw new Error(`safetensors: duplicate tensor name "${t.name}"`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new Error(`safetensors: tensor "${t.name}" has an invalid shape ${JSON.stringify(t.shape)}`);
    }
    if (!(t.data instanceof Float32Array)) throw new Error(`safetensors: tensor "${t.name}" data must be a Float32Array`);
    const n = numel(t.shape);
    if (n !== t.data.length) {
      throw new Error(`safetensors: tensor "${t.name}" has ${t.data.length} values but shape [${t.shape}] needs ${n}`);
    }
    header[t.name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, headerLen % 2 ** 32, true);
  dv.setUint32(4, Math.floor(headerLen / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const t of tensors) {
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    } else {
      for (let i = 0; i < t.data.length; i++) dv.setFloat32(pos + 4 * i, t.data[i], true);
    }
    pos += t.data.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------- reader

interface RawEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export function decodeSafetensors(bytes: Uint8Array, opts: { maxHeaderBytes?: number } = {}): DecodedSafetensors {
  if (!(bytes instanceof Uint8Array)) throw new Error('safetensors: input must be a Uint8Array');
  const maxHeader = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (bytes.length < 8) throw new Error(`safetensors: file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const headerLen = hi * 2 ** 32 + lo;
  if (!Number.isSafeInteger(headerLen)) throw new Error(`safetensors: header length (hi word ${hi}) is not a safe integer`);
  if (headerLen > maxHeader) throw new Error(`safetensors: header length ${headerLen} exceeds the limit of ${maxHeader} bytes`);
  if (headerLen > bytes.length - 8) {
    throw new Error(`safetensors: header length ${headerLen} is larger than the ${bytes.length - 8} bytes after the length field`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    throw new Error('safetensors: header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = parseStrictJson(text);
  } catch (e) {
    throw new Error(`safetensors: header is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new Error('safetensors: header JSON is not an object');
  }

  const metadata: Record<string, string> = {};
  const entries: RawEntry[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new Error('safetensors: __metadata__ must be an object of string values');
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new Error(`safetensors: __metadata__ value for "${k}" is ${describe(v)}, not a string`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    entries.push(parseEntry(name, value));
  }

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  for (const e of entries) {
    if (e.end > dataLen) {
      throw new Error(`safetensors: tensor "${e.name}" data_offsets [${e.begin}, ${e.end}] are out of range of the ${dataLen}-byte data section`);
    }
    const want = numel(e.shape) * DTYPE_BYTES[e.dtype];
    if (e.end - e.begin !== want) {
      throw new Error(`safetensors: tensor "${e.name}" spans ${e.end - e.begin} bytes but ${e.dtype} shape [${e.shape}] needs ${want}`);
    }
  }
  // The data section must be covered exactly: no holes, no overlaps, nothing trailing.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: RawEntry | undefined;
  for (const e of sorted) {
    if (e.begin < cursor) {
      const other = prev ? `tensor "${prev.name}" [${prev.begin}, ${prev.end}]` : 'the start of the data section';
      throw new Error(`safetensors: tensor "${e.name}" [${e.begin}, ${e.end}] overlaps ${other}`);
    }
    if (e.begin > cursor) {
      throw new Error(`safetensors: hole in the data section: bytes [${cursor}, ${e.begin}) before tensor "${e.name}" belong to no tensor`);
    }
    cursor = e.end;
    prev = e;
  }
  if (cursor !== dataLen) {
    throw new Error(`safetensors: hole in the data section: bytes [${cursor}, ${dataLen}) at the end belong to no tensor`);
  }

  const tensors: DecodedSafetensors['tensors'] = new Map();
  for (const e of entries) {
    tensors.set(e.name, { shape: e.shape, dtype: e.dtype, data: toF32(bytes, dataStart + e.begin, e) });
  }
  return { tensors, metadata };
}

function parseEntry(name: string, value: unknown): RawEntry {
  const where = `safetensors: tensor "${name}"`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: entry is ${describe(value)}, not an object`);
  const v = value as Record<string, unknown>;
  for (const k of ['dtype', 'shape', 'data_offsets']) {
    if (!(k in v)) throw new Error(`${where}: entry is missing "${k}"`);
  }
  if (typeof v.dtype !== 'string') throw new Error(`${where}: dtype is ${describe(v.dtype)}, not a string`);
  if (!(v.dtype in DTYPE_BYTES)) {
    throw new Error(`${where}: unsupported dtype ${v.dtype} (supported: F32, and F16/BF16/F64 converted to f32)`);
  }
  if (!Array.isArray(v.shape)) throw new Error(`${where}: shape is ${describe(v.shape)}, not an array`);
  for (const d of v.shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new Error(`${where}: shape ${JSON.stringify(v.shape)} has an invalid dimension ${JSON.stringify(d)} (need non-negative integers)`);
    }
  }
  const shape = v.shape as number[];
  if (!Number.isSafeInteger(numel(shape) * DTYPE_BYTES[v.dtype])) throw new Error(`${where}: shape [${shape}] is too large`);
  const off = v.data_offsets;
  if (!Array.isArray(off) || off.length !== 2) throw new Error(`${where}: data_offsets ${JSON.stringify(off)} is not [begin, end]`);
  const [begin, end] = off;
  for (const x of [begin, end]) {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
      throw new Error(`${where}: data_offsets ${JSON.stringify(off)} must be non-negative integers`);
    }
  }
  if (begin > end) throw new Error(`${where}: data_offsets [${begin}, ${end}] have begin > end`);
  return { name, dtype: v.dtype, shape: [...shape], begin, end };
}

function toF32(bytes: Uint8Array, abs: number, e: RawEntry): Float32Array {
  const n = numel(e.shape);
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + abs, e.end - e.begin);
  switch (e.dtype) {
    case 'F32':
      // Always a copy: the result never aliases the input, and unaligned offsets are fine.
      if (LITTLE_ENDIAN_HOST) new Uint8Array(out.buffer).set(bytes.subarray(abs, abs + 4 * n));
      else for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true); // round-to-nearest-even to f32
      break;
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
      break;
    }
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      break;
  }
  return out;
}

/** IEEE 754 binary16 -> number (exact; every half value is representable in f32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `a string ${JSON.stringify(v)}` : `${typeof v} ${JSON.stringify(v)}`;
}

// ---------------------------------------------------------------------------------------------------- JSON

/**
 * RFC 8259 JSON parser that refuses duplicate object keys (JSON.parse silently keeps the last one, which would let
 * a file carry two different tensors under one name). Values are plain JS values; objects have null prototypes
 * (so a key like "__proto__" is an ordinary key).
 */
export function parseStrictJson(text: string): unknown {
  let i = 0;
  const MAX_DEPTH = 64;
  const fail = (msg: string): never => {
    throw new Error(`${msg} at offset ${i}`);
  };
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return JSON.parse(text.slice(start, i)) as string; // validates escapes and control characters
      }
      if (c === 0x5c) i += 2;
      else if (c < 0x20) fail('control character in string');
      else i++;
    }
    return fail('unterminated string');
  };
  const value = (depth: number): unknown => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = Object.create(null);
      const keys = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const k = str();
        if (keys.has(k)) fail(`duplicate key ${JSON.stringify(k)}`);
        keys.add(k);
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        obj[k] = value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m) {
      i += m[0].length;
      return Number(m[0]);
    }
    for (const [lit, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return v;
      }
    }
    return fail(i >= text.length ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[i])}`);
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('trailing characters after the JSON value');
  return v;
}
