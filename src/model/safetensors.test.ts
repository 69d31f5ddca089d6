import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors, halfToFloat, parseStrictJson } from './safetensors';

/** A file from a raw header string and data bytes (header length field = header byte length unless given). */
function build(header: string | object, data: Uint8Array | number = 0, lenField?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, lenField ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

function f32bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

const entry = (begin: number, end: number, shape: number[] = [(end - begin) / 4], dtype = 'F32') => ({ dtype, shape, data_offsets: [begin, end] });

// Written by the reference implementation (Python safetensors 0.8.0, safetensors.numpy.save) with
// a = arange(6).reshape(2,3)*0.5-1 (F32), b.half = [1.5, -2.25, 65504, 6.1e-5, 5.96e-8, inf] (F16, at byte 60),
// c = [[0.1, -1e300], [3, 1e-50]] (F64), d = zeros (0, 4) (F32), e = 7.0 scalar (F32); metadata format=pt, k="v ü".
const REFERENCE_FILE =
  'SAEAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJmb3JtYXQiOiJwdCIsImsiOiJ2IMO8In0sImMiOnsiZHR5cGUiOiJGNjQiLCJzaGFwZSI6WzIsMl0sImRhdGFfb2Zmc2V0cyI6WzAsMzJdfSwiYSI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMiwzXSwiZGF0YV9vZmZzZXRzIjpbMzIsNTZdfSwiZCI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMCw0XSwiZGF0YV9vZmZzZXRzIjpbNTYsNTZdfSwiZSI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbXSwiZGF0YV9vZmZzZXRzIjpbNTYsNjBdfSwiYi5oYWxmIjp7ImR0eXBlIjoiRjE2Iiwic2hhcGUiOls2XSwiZGF0YV9vZmZzZXRzIjpbNjAsNzJdfX0gmpmZmZmZuT+cdQCIPOQ3/gAAAAAAAAhAH7jUSnrujTUAAIC/AAAAvwAAAAAAAAA/AACAPwAAwD8AAOBAAD6AwP97/wMBAAB8';

describe('safetensors encode/decode', () => {
  it('round-trips tensors (including scalar and empty) and metadata', () => {
    const tensors = [
      { name: 'w', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, Math.PI, -0, 1e-38]) },
      { name: 'scalar', shape: [], data: Float32Array.from([42]) },
      { name: 'empty', shape: [0, 5], data: new Float32Array(0) },
      { name: 'bias ü', shape: [3], data: Float32Array.from([Infinity, -Infinity, NaN]) },
    ];
    const bytes = encodeSafetensors(tensors, { format: 'pt', note: 'héllo "quoted"' });
    const { tensors: got, metadata } = decodeSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt', note: 'héllo "quoted"' });
    expect([...got.keys()]).toEqual(['w', 'scalar', 'empty', 'bias ü']);
    for (const t of tensors) {
      const g = got.get(t.name)!;
      expect(g.dtype).toBe('F32');
      expect(g.shape).toEqual(t.shape);
      expect(Array.from(new Uint32Array(g.data.buffer))).toEqual(Array.from(new Uint32Array(t.data.buffer))); // bitwise
    }
  });

  it('writes the reference layout: u64 length, space-padded JSON to a multiple of 8, contiguous data in order', () => {
    const a = Float32Array.from([1, 2, 3]);
    const b = Float32Array.from([4, 5]);
    const bytes = encodeSafetensors([
      { name: 'a', shape: [3], data: a },
      { name: 'b', shape: [1, 2], data: b },
    ]);
    const dv = new DataView(bytes.buffer);
    const n = Number(dv.getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd().length).toBeGreaterThan(n - 8);
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    expect(JSON.parse(text)).toEqual({
      a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      b: { dtype: 'F32', shape: [1, 2], data_offsets: [12, 20] },
    });
    expect(bytes.length).toBe(8 + n + 20);
    expect(Array.from(new Float32Array(bytes.slice(8 + n).buffer))).toEqual([1, 2, 3, 4, 5]);
    // no metadata key when none given
    expect(text).not.toContain('__metadata__');
  });

  it('decodes a file written by the reference implementation (F32/F16/F64, unaligned, scalar, empty)', () => {
    const bytes = Uint8Array.from(atob(REFERENCE_FILE), (c) => c.charCodeAt(0));
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt', k: 'v ü' });
    expect(tensors.get('a')).toEqual({ dtype: 'F32', shape: [2, 3], data: Float32Array.from([-1, -0.5, 0, 0.5, 1, 1.5]) });
    expect(tensors.get('d')).toEqual({ dtype: 'F32', shape: [0, 4], data: new Float32Array(0) });
    expect(tensors.get('e')).toEqual({ dtype: 'F32', shape: [], data: Float32Array.from([7]) });
    const b = tensors.get('b.half')!;
    expect(b.dtype).toBe('F16');
    // numpy float16 -> float32 of the same values
    expect(Array.from(b.data)).toEqual([1.5, -2.25, 65504, 6.097555160522461e-5, 5.960464477539063e-8, Infinity]);
    const c = tensors.get('c')!;
    expect(c.dtype).toBe('F64');
    expect(c.shape).toEqual([2, 2]);
    expect(Array.from(c.data)).toEqual([Math.fround(0.1), -Infinity, 3, 0]); // numpy float64 -> float32
  });

  it('converts F16 specials and BF16 exactly', () => {
    expect(halfToFloat(0x0000)).toBe(0);
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x03ff)).toBe(1023 * 2 ** -24);
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
    const bf = new Uint8Array(6);
    const dv = new DataView(bf.buffer);
    [0x3f80, 0xc049, 0x7f80].forEach((v, i) => dv.setUint16(2 * i, v, true)); // 1, -3.140625, inf
    const t = decodeSafetensors(build({ x: entry(0, 6, [3], 'BF16') }, bf)).tensors.get('x')!;
    expect(Array.from(t.data)).toEqual([1, -3.140625, Infinity]);
  });

  it('reads F32 data at unaligned offsets and from unaligned views, and never aliases the input', () => {
    // F16 [1] at 0..2, then F32 [2] at 2..10: the F32 data starts at an odd multiple of 2
    const data = new Uint8Array(10);
    new DataView(data.buffer).setUint16(0, 0x3c00, true);
    new DataView(data.buffer).setFloat32(2, 1.25, true);
    new DataView(data.buffer).setFloat32(6, -7.5, true);
    const file = build({ h: entry(0, 2, [1], 'F16'), f: entry(2, 10, [2]) }, data);
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    const view = big.subarray(3); // byteOffset 3
    const { tensors } = decodeSafetensors(view);
    const f = tensors.get('f')!;
    expect(Array.from(f.data)).toEqual([1.25, -7.5]);
    expect(f.data.buffer).not.toBe(big.buffer);
    expect(Array.from(tensors.get('h')!.data)).toEqual([1]);
    const enc = encodeSafetensors([{ name: 'x', shape: [2], data: Float32Array.from([1, 2]) }]);
    const dec = decodeSafetensors(enc).tensors.get('x')!;
    dec.data[0] = 99;
    expect(decodeSafetensors(enc).tensors.get('x')!.data[0]).toBe(1);
  });

  it('encodes views of larger buffers correctly', () => {
    const backing = Float32Array.from([9, 9, 1, 2, 3, 9]);
    const bytes = encodeSafetensors([{ name: 'v', shape: [3], data: backing.subarray(2, 5) }]);
    expect(Array.from(decodeSafetensors(bytes).tensors.get('v')!.data)).toEqual([1, 2, 3]);
  });

  it('refuses invalid inputs to the encoder', () => {
    const d = Float32Array.from([1, 2]);
    expect(() => encodeSafetensors([{ name: 'a', shape: [3], data: d }])).toThrow(/"a".*2 values.*needs 3/);
    expect(() =>
      encodeSafetensors([
        { name: 'a', shape: [2], data: d },
        { name: 'a', shape: [2], data: d },
      ]),
    ).toThrow(/duplicate.*"a"/);
    expect(() => encodeSafetensors([{ name: '__metadata__', shape: [2], data: d }])).toThrow(/reserved/);
    expect(() => encodeSafetensors([{ name: 'a', shape: [-2], data: d }])).toThrow(/"a".*invalid shape/);
    expect(() => encodeSafetensors([], { n: 3 as unknown as string })).toThrow(/metadata.*"n".*string/);
  });

  it('keeps "__proto__" as an ordinary tensor name and metadata key', () => {
    const bytes = encodeSafetensors([{ name: '__proto__', shape: [1], data: Float32Array.from([5]) }], JSON.parse('{"__proto__":"x"}'));
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(Array.from(tensors.get('__proto__')!.data)).toEqual([5]);
    expect(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value).toBe('x');
  });
});

describe('safetensors validation', () => {
  const ok = { a: entry(0, 8) };
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['file shorter than 8 bytes', () => new Uint8Array(5), /5 bytes, shorter than the 8-byte/],
    ['header length larger than the file', () => build(ok, 8, 10_000n), /header length 10000 is larger than/],
    ['header length not a safe integer', () => build(ok, 8, 2n ** 63n), /not a safe integer/],
    [
      'header not UTF-8',
      () => {
        const f = build('{"a":1}  ');
        f[9] = 0xff;
        return f;
      },
      /not valid UTF-8/,
    ],
    ['header not JSON', () => build('{"a": '), /not valid JSON/],
    ['header JSON not an object', () => build('[1, 2]'), /not an object/],
    ['header trailing garbage', () => build('{} x'), /not valid JSON.*trailing/],
    ['metadata not an object', () => build({ __metadata__: ['x'] }), /__metadata__ must be an object/],
    ['metadata value not a string', () => build({ __metadata__: { n: 3 } }), /__metadata__ value for "n" is number 3, not a string/],
    ['entry not an object', () => build({ a: 3 }), /tensor "a": entry is number 3, not an object/],
    ['missing dtype', () => build({ a: { shape: [2], data_offsets: [0, 8] } }, 8), /tensor "a".*missing "dtype"/],
    ['missing shape', () => build({ a: { dtype: 'F32', data_offsets: [0, 8] } }, 8), /tensor "a".*missing "shape"/],
    ['missing data_offsets', () => build({ a: { dtype: 'F32', shape: [2] } }, 8), /tensor "a".*missing "data_offsets"/],
    ['dtype wrong type', () => build({ a: { ...entry(0, 8), dtype: 4 } }, 8), /tensor "a": dtype is number/],
    ['unsupported dtype', () => build({ a: entry(0, 8, [2], 'I32') }, 8), /tensor "a": unsupported dtype I32/],
    ['shape not an array', () => build({ a: { ...entry(0, 8), shape: 2 } }, 8), /tensor "a": shape is number 2, not an array/],
    ['negative dim', () => build({ a: entry(0, 8, [-2]) }, 8), /tensor "a": shape \[-2\] has an invalid dimension -2/],
    ['non-integer dim', () => build({ a: entry(0, 8, [1.5]) }, 8), /tensor "a".*invalid dimension 1.5/],
    ['string dim', () => build({ a: entry(0, 8, ['2' as unknown as number]) }, 8), /tensor "a".*invalid dimension "2"/],
    [
      'data_offsets wrong arity',
      () => build({ a: { ...entry(0, 8), data_offsets: [0, 4, 8] } }, 8),
      /tensor "a": data_offsets \[0,4,8\] is not \[begin, end\]/,
    ],
    ['data_offsets not ints', () => build({ a: { ...entry(0, 8), data_offsets: [0, 8.5] } }, 8), /tensor "a": data_offsets.*non-negative integers/],
    ['data_offsets negative', () => build({ a: { ...entry(0, 8), data_offsets: [-4, 4] } }, 8), /tensor "a": data_offsets.*non-negative integers/],
    ['begin > end', () => build({ a: { ...entry(0, 8), data_offsets: [8, 0] } }, 8), /tensor "a": data_offsets \[8, 0\] have begin > end/],
    ['offsets out of range', () => build({ a: entry(0, 12) }, 8), /tensor "a" data_offsets \[0, 12\] are out of range of the 8-byte/],
    ['length != numel*4', () => build({ a: entry(0, 8, [3]) }, 8), /tensor "a" spans 8 bytes but F32 shape \[3\] needs 12/],
    ['F16 length mismatch', () => build({ a: entry(0, 8, [2], 'F16') }, 8), /tensor "a" spans 8 bytes but F16 shape \[2\] needs 4/],
    ['overlap', () => build({ a: entry(0, 8), b: entry(4, 12) }, 12), /tensor "b" \[4, 12\] overlaps tensor "a" \[0, 8\]/],
    ['identical ranges', () => build({ a: entry(0, 8), b: entry(0, 8) }, 8), /overlaps/],
    ['empty tensor inside another', () => build({ a: entry(0, 8), z: entry(4, 4, [0]) }, 8), /tensor "z" \[4, 4\] overlaps tensor "a"/],
    ['hole between tensors', () => build({ a: entry(0, 8), b: entry(12, 16) }, 16), /hole.*\[8, 12\) before tensor "b"/],
    ['hole at the start', () => build({ a: entry(4, 12) }, 12), /hole.*\[0, 4\) before tensor "a"/],
    ['trailing bytes', () => build({ a: entry(0, 8) }, 12), /hole.*\[8, 12\) at the end/],
    [
      'duplicate names',
      () => build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
      /duplicate key "a"/,
    ],
    ['duplicate __metadata__', () => build('{"__metadata__":{},"__metadata__":{}}'), /duplicate key "__metadata__"/],
  ];
  for (const [what, make, re] of cases) {
    it(`refuses: ${what}`, () => {
      expect(() => decodeSafetensors(make())).toThrow(re);
    });
  }

  it('refuses a header larger than maxHeaderBytes, and accepts it below the limit', () => {
    const f = build(ok, f32bytes([1, 2]));
    const n = f.length - 16;
    expect(() => decodeSafetensors(f, { maxHeaderBytes: n - 1 })).toThrow(new RegExp(`header length ${n} exceeds the limit of ${n - 1}`));
    expect(decodeSafetensors(f, { maxHeaderBytes: n }).tensors.size).toBe(1);
  });

  it('accepts an empty file body ({} header), whitespace padding, and ignores unknown entry keys', () => {
    expect(decodeSafetensors(build('{}      ')).tensors.size).toBe(0);
    const f = build({ a: { ...entry(0, 8), extra: 'x' } }, f32bytes([1, 2]));
    expect(Array.from(decodeSafetensors(f).tensors.get('a')!.data)).toEqual([1, 2]);
  });
});

describe('strict JSON parser', () => {
  it('agrees with JSON.parse on valid JSON', () => {
    for (const s of ['{"a":[1,-2.5e3,true,false,null,"x\\u00e9\\n"],"b":{"c":{}}}', ' [ ] ', '"\\ud83d\\ude00"', '0', '-0.0e+1']) {
      expect(parseStrictJson(s)).toEqual(JSON.parse(s));
    }
  });
  it('refuses what JSON.parse refuses, plus duplicate keys', () => {
    for (const s of ['', '{', '{"a":1,}', '[1,]', '01', '1.', '.5', "{'a':1}", '"\t"', '{"a" 1}', 'tru', 'NaN', '"\\x"']) {
      expect(() => JSON.parse(s), s).toThrow();
      expect(() => parseStrictJson(s), s).toThrow();
    }
    expect(() => parseStrictJson('{"x":{"a":1,"a":2}}')).toThrow(/duplicate key "a"/);
  });
});
