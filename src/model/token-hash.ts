// Token ids on the wire and on disk: little-endian u32 (`train.u32`, `val.u32`), and the sha256 that names them in
// a run's DataSpec. WebCrypto (`crypto.subtle`): the same code in Node 20 and browsers. Kept apart from
// text-data.ts so that checking a download does not pull in the BPE ranks.

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The ids as little-endian bytes (a view of `tokens` where the platform is little-endian, as every one we run on is). */
export function tokensToBytes(tokens: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength);
  const out = new Uint8Array(tokens.length * 4);
  const view = new DataView(out.buffer);
  tokens.forEach((t, i) => view.setUint32(i * 4, t, true));
  return out;
}

/** Little-endian u32 bytes -> ids; `what` names the source in the error for a length that is not a multiple of 4. */
export function bytesToTokens(bytes: Uint8Array, what: string): Uint32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error(`${what}: ${bytes.byteLength} bytes is not a whole number of u32 token ids`);
  const out = new Uint32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

/** sha256 (64 lowercase hex digits) of the ids as little-endian u32. */
export async function tokensSha256(tokens: Uint32Array): Promise<string> {
  const bytes = tokensToBytes(tokens);
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
