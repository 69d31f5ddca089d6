// Deterministic test bytes: both ends regenerate the same stream from (seed, length), so a receiver can check a
// transfer byte for byte without the data ever being sent twice. Runs in Node and in the browser page.

/** xorshift32 words, little-endian; fast enough for 64 MiB in well under a second. */
export function patternBytes(seed: number, length: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  fillWords(words, 0, words.length, firstState(seed));
  return new Uint8Array(words.buffer, 0, length);
}

function firstState(seed: number): number {
  return seed >>> 0 || 0x9e3779b9;
}

/** xorshift32 from state `x` into words[from, to); returns the state after. */
function fillWords(words: Uint32Array, from: number, to: number, x: number): number {
  for (let i = from; i < to; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return x;
}

/** Index of the first byte that differs from the pattern, or -1 when identical (length included). */
export function firstMismatch(seed: number, bytes: Uint8Array, expectedLength: number): number {
  if (bytes.byteLength !== expectedLength) return Math.min(bytes.byteLength, expectedLength);
  const want = patternBytes(seed, expectedLength);
  for (let i = 0; i < want.length; i++) if (want[i] !== bytes[i]) return i;
  return -1;
}

/** Words generated between yields to the event loop by the async forms (4 MiB). */
const YIELD_WORDS = 1 << 20;

const yieldToLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * patternBytes without holding the event loop: 64 MiB takes about a second (several on a loaded CI machine), and a
 * process that computes it in one go sends no heartbeat meanwhile, so the far side of a live link (a browser tab, a
 * peer process) declares it dead after 5 s of silence. The same bytes as patternBytes.
 */
export async function patternBytesAsync(seed: number, length: number): Promise<Uint8Array> {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = firstState(seed);
  for (let from = 0; from < words.length; from += YIELD_WORDS) {
    if (from > 0) await yieldToLoop();
    x = fillWords(words, from, Math.min(words.length, from + YIELD_WORDS), x);
  }
  return new Uint8Array(words.buffer, 0, length);
}

/** firstMismatch without holding the event loop (see patternBytesAsync). */
export async function firstMismatchAsync(seed: number, bytes: Uint8Array, expectedLength: number): Promise<number> {
  if (bytes.byteLength !== expectedLength) return Math.min(bytes.byteLength, expectedLength);
  const want = await patternBytesAsync(seed, expectedLength);
  for (let i = 0; i < want.length; i++) {
    if (i > 0 && i % (4 * YIELD_WORDS) === 0) await yieldToLoop();
    if (want[i] !== bytes[i]) return i;
  }
  return -1;
}
