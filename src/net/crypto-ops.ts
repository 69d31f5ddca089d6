// The three operations the swarm runs per message and per payload: ECDSA P-256 / SHA-256 signatures (IEEE P1363,
// 64 bytes) and SHA-256 digests. WebCrypto by default (a tab, and Node until told otherwise). Node peers install
// node:crypto's synchronous forms (src/net/node-crypto.ts): the same keys (WebCrypto CryptoKeys), the same bytes,
// without Node's WebCrypto taking each call through its thread pool and back (two thread wake-ups per call, ~4x the
// CPU of the operation for a 300-byte message). Keys are still made, imported and exported by WebCrypto only.

export interface CryptoOps {
  /** ECDSA P-256 with SHA-256 over `data`: the 64-byte r || s signature. */
  sign(privateKey: CryptoKey, data: Uint8Array): Promise<Uint8Array>;
  /** Whether `signature` (r || s) is `publicKey`'s signature of `data`; false on any malformed input, never throws. */
  verify(publicKey: CryptoKey, signature: Uint8Array, data: Uint8Array): Promise<boolean>;
  /** SHA-256 of `data` (32 bytes). The caller may reuse `data` once the promise is made. */
  sha256(data: Uint8Array): Promise<Uint8Array>;
}

const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Bytes WebCrypto accepts (an ArrayBuffer-backed view; a copy only where `data` is not one). */
function buf(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data.buffer instanceof ArrayBuffer ? (data as Uint8Array<ArrayBuffer>) : new Uint8Array(data);
}

export const webCryptoOps: CryptoOps = {
  async sign(privateKey, data) {
    return new Uint8Array(await crypto.subtle.sign(SIGN, privateKey, buf(data)));
  },
  async verify(publicKey, signature, data) {
    try {
      return await crypto.subtle.verify(SIGN, publicKey, buf(signature), buf(data));
    } catch {
      return false;
    }
  },
  async sha256(data) {
    // WebCrypto copies `data` when called.
    return new Uint8Array(await crypto.subtle.digest('SHA-256', buf(data)));
  },
};

let current: CryptoOps = webCryptoOps;

/** The operations in use in this realm (WebCrypto unless a platform installed others). */
export function cryptoOps(): CryptoOps {
  return current;
}

/** Installs `ops` for this realm (src/net/node-crypto.ts in Node); returns the ones it replaced. */
export function useCryptoOps(ops: CryptoOps): CryptoOps {
  const before = current;
  current = ops;
  return before;
}
