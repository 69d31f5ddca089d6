// Deterministic identities for tests: the private key is SHA-256 of a label, so a test's peer ids are the same on
// every run (reproducible logs and orderings) and can be known before anyone connects (testId). Node only: the
// public point is computed with node:crypto's ECDH. Production identities are random (src/net/identity.ts).

import { createECDH, createHash } from 'node:crypto';
import { identityOf, idOfFingerprint, toBase64Url, type Identity } from '../../src/net/identity';

interface Material {
  d: Buffer;
  /** Uncompressed point, 65 bytes. */
  pub: Buffer;
  fingerprint: string;
}

const materials = new Map<string, Material>();

function material(label: string): Material {
  let m = materials.get(label);
  if (!m) {
    const d = createHash('sha256').update(`tabswarm-test-key\n${label}`).digest();
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(d);
    const pub = ecdh.getPublicKey();
    m = { d, pub, fingerprint: createHash('sha256').update(pub).digest('hex') };
    materials.set(label, m);
  }
  return m;
}

/** The fingerprint of `label`'s test key. */
export function testFingerprint(label: string): string {
  return material(label).fingerprint;
}

/** The member id of `label`'s test key. */
export function testId(label: string): string {
  return idOfFingerprint(testFingerprint(label));
}

const identities = new Map<string, Promise<Identity>>();

/** `label`'s test identity (the same key pair every time). */
export function testIdentity(label: string): Promise<Identity> {
  let p = identities.get(label);
  if (!p) {
    const { d, pub } = material(label);
    const jwk: JsonWebKey = { kty: 'EC', crv: 'P-256', x: toBase64Url(pub.subarray(1, 33)), y: toBase64Url(pub.subarray(33, 65)) };
    const alg = { name: 'ECDSA', namedCurve: 'P-256' } as const;
    p = (async () => {
      const privateKey = await crypto.subtle.importKey('jwk', { ...jwk, d: toBase64Url(d) }, alg, false, ['sign']);
      const publicKey = await crypto.subtle.importKey('jwk', jwk, alg, true, ['verify']);
      return identityOf({ privateKey, publicKey });
    })();
    identities.set(label, p);
  }
  return p;
}
