// Bitwise equality of float arrays: the same length and the same bytes (NaN payloads and -0 included). A deep
// toEqual of millions of values takes vitest minutes, and it calls -0 equal to 0.

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
