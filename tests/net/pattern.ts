// Deterministic test bytes: both ends regenerate the same stream from (seed, length), so a receiver can check a
// transfer byte for byte without the data ever being sent twice. Runs in Node and in the browser page.

/** xorshift32 words, little-endian; fast enough for 64 MiB in well under a second. */
export function patternBytes(seed: number, length: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, length);
}

/** Index of the first byte that differs from the pattern, or -1 when identical (length included). */
export function firstMismatch(seed: number, bytes: Uint8Array, expectedLength: number): number {
  if (bytes.byteLength !== expectedLength) return Math.min(bytes.byteLength, expectedLength);
  const want = patternBytes(seed, expectedLength);
  for (let i = 0; i < want.length; i++) if (want[i] !== bytes[i]) return i;
  return -1;
}
