// node:crypto's CryptoOps against WebCrypto's: the same keys, signatures either makes verify with the other, the same
// digests (views at an offset, the empty input, past the synchronous size), and malformed input is false, never a throw.
import { afterEach, describe, expect, it } from 'vitest';
import { cryptoOps, useCryptoOps, webCryptoOps, type CryptoOps } from './crypto-ops';
import { ephemeralIdentity, importPublicKey, verifySignature } from './identity';
import { nodeCryptoOps, SYNC_DIGEST_MAX_BYTES } from './node-crypto';

const ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const text = (s: string) => new TextEncoder().encode(s);

/** `n` bytes of a seeded pattern (a multiplicative hash of the index: no two sizes or seeds alike). */
function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => Math.imul(i + seed * 0x9e3779b1, 0x85ebca6b) >>> 24);
}

const installed = cryptoOps();
afterEach(() => void useCryptoOps(installed));

describe('node:crypto ops', () => {
  it('signatures made by either verify with the other; another message, key or signature does not', async () => {
    const keys = await crypto.subtle.generateKey(ALG, false, ['sign', 'verify']);
    const other = await crypto.subtle.generateKey(ALG, false, ['sign', 'verify']);
    const msg = text('tabswarm-payload\nrun\n3\n0\n1\nact\npeer\n0123');
    const pairs: [CryptoOps, CryptoOps][] = [
      [nodeCryptoOps, webCryptoOps],
      [webCryptoOps, nodeCryptoOps],
      [nodeCryptoOps, nodeCryptoOps],
    ];
    for (const [signer, checker] of pairs) {
      const sig = await signer.sign(keys.privateKey, msg);
      expect(sig.length).toBe(64);
      expect(await checker.verify(keys.publicKey, sig, msg)).toBe(true);
      expect(await checker.verify(other.publicKey, sig, msg)).toBe(false);
      expect(await checker.verify(keys.publicKey, sig, text('tabswarm-payload\nrun\n3\n0\n2\nact\npeer\n0123'))).toBe(false);
      const flipped = sig.slice();
      flipped[10] ^= 1;
      expect(await checker.verify(keys.publicKey, flipped, msg)).toBe(false);
    }
  });

  it('malformed signatures are false, not a throw: wrong lengths, zeros, r and s past the group order', async () => {
    const keys = await crypto.subtle.generateKey(ALG, false, ['sign', 'verify']);
    const msg = text('m');
    const bad = [new Uint8Array(0), new Uint8Array(63), new Uint8Array(65), new Uint8Array(64), new Uint8Array(64).fill(0xff)];
    for (const sig of bad) {
      expect(await nodeCryptoOps.verify(keys.publicKey, sig, msg)).toBe(false);
      expect(await webCryptoOps.verify(keys.publicKey, sig, msg)).toBe(false);
    }
  });

  it('digests equal WebCrypto: empty, odd sizes, a view at an offset, a payload, past the synchronous size', async () => {
    const big = bytes(SYNC_DIGEST_MAX_BYTES + 13, 7);
    const cases = [new Uint8Array(0), bytes(1, 1), bytes(131_072, 2), bytes(1000, 3).subarray(17, 917), big, big.subarray(5)];
    for (const b of cases) expect(await nodeCryptoOps.sha256(b)).toEqual(await webCryptoOps.sha256(b));
  });

  it('a digest reads its input when called: the caller may overwrite it at once', async () => {
    const b = bytes(4096, 9);
    const want = await webCryptoOps.sha256(b);
    const p = nodeCryptoOps.sha256(b);
    b.fill(0);
    expect(await p).toEqual(want);
  });

  it('identities: signed under node:crypto, verified under WebCrypto, and the other way round', async () => {
    useCryptoOps(nodeCryptoOps);
    const a = await ephemeralIdentity();
    const sigA = await a.sign('hello');
    useCryptoOps(webCryptoOps);
    expect(await verifySignature(a.publicKey, 'hello', sigA)).toBe(true);
    const b = await ephemeralIdentity();
    const sigB = await b.sign('hello');
    useCryptoOps(nodeCryptoOps);
    expect(await verifySignature(b.publicKey, 'hello', sigB)).toBe(true);
    expect(await verifySignature(b.publicKey, 'hellO', sigB)).toBe(false);
    expect(await verifySignature(a.publicKey, 'hello', sigB)).toBe(false);
    expect(await importPublicKey(b.publicKey)).not.toBeNull();
  });
});
