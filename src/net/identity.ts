// Identities: one ECDSA P-256 key pair per peer and per coordinator (WebCrypto, the same in a tab and in Node). A
// member's id is derived from its public key (so nobody can claim another's id) and its fingerprint (the full
// SHA-256 of the key) is what a join URL carries to name a room's coordinator. Generic: no swarm knowledge; the
// layers above sign what they need with domain-separated strings (`tabswarm-join`, `tabswarm-control`, ...).
//
// Public keys travel as base64url of the raw uncompressed point (65 bytes); signatures as base64url of the IEEE
// P1363 r||s form WebCrypto produces (64 bytes). verify* never throws: malformed keys or signatures are `false`.

const ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Raw uncompressed P-256 point, base64url: 65 bytes -> 87 characters. */
export const PUBLIC_KEY_CHARS = 87;
/** P1363 signature, base64url: 64 bytes -> 86 characters. */
export const SIGNATURE_CHARS = 86;
/** A fingerprint: lowercase hex SHA-256 of the raw public key. */
export const FINGERPRINT_RE = /^[0-9a-f]{64}$/;
/** A member id: the first 32 hex digits (128 bits) of its key's fingerprint. */
export const ID_CHARS = 32;

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

export function toBase64Url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Decodes base64url; null when `s` is not the canonical base64url of some bytes. Canonical: the unused low bits of
 * the last character must be zero, else two texts would decode to the same key or signature (a signature edited in
 * its last character would still verify).
 */
export function fromBase64Url(s: string): Uint8Array | null {
  if (!B64URL_RE.test(s) || s.length % 4 === 1) return null;
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  try {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return toBase64Url(out) === s ? out : null;
  } catch {
    return null;
  }
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

const encoder = new TextEncoder();
function bytesOf(data: Uint8Array | string): Uint8Array<ArrayBuffer> {
  if (typeof data === 'string') return encoder.encode(data);
  return new Uint8Array(data);
}

/** Lowercase hex SHA-256 of `data`. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytesOf(data))));
}

/** The fingerprint of a public key (hex SHA-256 of its raw bytes); null if `publicKey` is not a P-256 key's encoding. */
export async function fingerprintOf(publicKey: string): Promise<string | null> {
  if (publicKey.length !== PUBLIC_KEY_CHARS) return null;
  const raw = fromBase64Url(publicKey);
  if (!raw || raw.length !== 65 || raw[0] !== 4) return null;
  return sha256Hex(raw);
}

/** The member id a fingerprint stands for. */
export function idOfFingerprint(fingerprint: string): string {
  return fingerprint.slice(0, ID_CHARS);
}

/** The member id of a public key; null if the key is malformed. */
export async function idOfKey(publicKey: string): Promise<string | null> {
  const fp = await fingerprintOf(publicKey);
  return fp === null ? null : idOfFingerprint(fp);
}

/** A new key pair; `extractable` only where it must be written to a key file (Node). */
export async function generateKeyPair(extractable: boolean): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(ALG, extractable, ['sign', 'verify']);
}

/** Someone who can sign: the key pair, its public key, fingerprint and id. */
export interface Identity {
  readonly id: string;
  readonly fingerprint: string;
  /** base64url raw public key. */
  readonly publicKey: string;
  readonly keys: CryptoKeyPair;
  /** base64url P1363 signature of `data` (UTF-8 if a string). */
  sign(data: Uint8Array | string): Promise<string>;
}

export async function identityOf(keys: CryptoKeyPair): Promise<Identity> {
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', keys.publicKey));
  const publicKey = toBase64Url(raw);
  const fingerprint = await sha256Hex(raw);
  const privateKey = keys.privateKey;
  return {
    id: idOfFingerprint(fingerprint),
    fingerprint,
    publicKey,
    keys,
    async sign(data) {
      return toBase64Url(new Uint8Array(await crypto.subtle.sign(SIGN, privateKey, bytesOf(data))));
    },
  };
}

/** A fresh in-memory identity (tests, or a peer that need not keep its credits). */
export async function ephemeralIdentity(): Promise<Identity> {
  return identityOf(await generateKeyPair(false));
}

const keyCache = new Map<string, Promise<CryptoKey | null>>();

/** Imports a base64url raw P-256 public key (cached); null if malformed. */
export function importPublicKey(publicKey: string): Promise<CryptoKey | null> {
  let p = keyCache.get(publicKey);
  if (!p) {
    p = (async () => {
      if (publicKey.length !== PUBLIC_KEY_CHARS) return null;
      const raw = fromBase64Url(publicKey);
      if (!raw || raw.length !== 65 || raw[0] !== 4) return null;
      try {
        return await crypto.subtle.importKey('raw', new Uint8Array(raw), ALG, true, ['verify']);
      } catch {
        return null;
      }
    })();
    if (keyCache.size > 4096) keyCache.clear();
    keyCache.set(publicKey, p);
  }
  return p;
}

/** Whether `signature` (base64url P1363) is `publicKey`'s signature of `data`. Never throws. */
export async function verifySignature(publicKey: string, data: Uint8Array | string, signature: string): Promise<boolean> {
  if (signature.length !== SIGNATURE_CHARS) return false;
  const sig = fromBase64Url(signature);
  if (!sig || sig.length !== 64) return false;
  const key = await importPublicKey(publicKey);
  if (!key) return false;
  try {
    return await crypto.subtle.verify(SIGN, key, new Uint8Array(sig), bytesOf(data));
  } catch {
    return false;
  }
}

/** JWK form of an extractable key pair (a Node key file). */
export interface IdentityFile {
  kind: 'tabswarm-identity';
  version: 1;
  privateKey: JsonWebKey;
  publicKey: JsonWebKey;
}

export async function exportIdentity(id: Identity): Promise<IdentityFile> {
  return {
    kind: 'tabswarm-identity',
    version: 1,
    privateKey: await crypto.subtle.exportKey('jwk', id.keys.privateKey),
    publicKey: await crypto.subtle.exportKey('jwk', id.keys.publicKey),
  };
}

/** Reads a key file's JSON; throws a clear error if it is not one. */
export async function importIdentity(file: unknown): Promise<Identity> {
  const f = file as Partial<IdentityFile> | null;
  if (!f || f.kind !== 'tabswarm-identity' || f.version !== 1 || typeof f.privateKey !== 'object' || typeof f.publicKey !== 'object')
    throw new Error('not a tabswarm identity file (kind "tabswarm-identity", version 1, JWK privateKey and publicKey)');
  try {
    const privateKey = await crypto.subtle.importKey('jwk', f.privateKey as JsonWebKey, ALG, true, ['sign']);
    const publicKey = await crypto.subtle.importKey('jwk', f.publicKey as JsonWebKey, ALG, true, ['verify']);
    return identityOf({ privateKey, publicKey });
  } catch (err) {
    throw new Error(`identity file holds no usable P-256 key pair: ${(err as Error).message}`, { cause: err });
  }
}
