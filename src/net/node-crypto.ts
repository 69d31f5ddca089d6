// node:crypto's synchronous ECDSA and SHA-256 behind CryptoOps (src/net/crypto-ops.ts), for Node peers and the Node
// coordinator: no thread-pool round trip per call. Node-only, like rtc-node.ts (which installs it).
import { createHash, KeyObject, sign, verify } from 'node:crypto';
import { webCryptoOps, type CryptoOps } from './crypto-ops';

/**
 * Digests up to this size run synchronously on the calling thread (~0.7 ms per MiB here); larger ones (state
 * transfers, checkpoints) go to WebCrypto's thread pool so the event loop is never held for long.
 */
export const SYNC_DIGEST_MAX_BYTES = 1 << 20;

const keyObjects = new WeakMap<CryptoKey, KeyObject>();

function keyObject(k: CryptoKey): KeyObject {
  let o = keyObjects.get(k);
  if (!o) {
    o = KeyObject.from(k);
    keyObjects.set(k, o);
  }
  return o;
}

export const nodeCryptoOps: CryptoOps = {
  async sign(privateKey, data) {
    return new Uint8Array(sign('sha256', data, { key: keyObject(privateKey), dsaEncoding: 'ieee-p1363' }));
  },
  async verify(publicKey, signature, data) {
    try {
      return verify('sha256', data, { key: keyObject(publicKey), dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      return false;
    }
  },
  async sha256(data) {
    if (data.byteLength > SYNC_DIGEST_MAX_BYTES) return webCryptoOps.sha256(data);
    return new Uint8Array(createHash('sha256').update(data).digest());
  },
};
