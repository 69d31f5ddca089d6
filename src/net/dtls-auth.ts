// Binds a WebRTC data channel to an identity: the offer and the answer carry the sender's signature over the
// attempt, both ends' ids and the DTLS certificate fingerprint(s) its SDP names. DTLS then proves the far end holds
// that certificate, so a verified signature means the channel's other end is the signer (or someone it gave its
// DTLS key to). Generic: knows identities and SDP, no swarm.

import { verifySignature, type Identity } from './identity';

/** The SDP's `a=fingerprint:` lines (session and media level), trimmed, in order. */
export function dtlsFingerprintLines(sdp: string): string[] {
  return sdp
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('a=fingerprint:'));
}

/** What an offer's or answer's `auth` signs; null when the SDP names no DTLS fingerprint (nothing to bind). */
export function dtlsAuthText(connId: string, from: string, to: string, sdp: string): string | null {
  const lines = dtlsFingerprintLines(sdp);
  if (lines.length === 0) return null;
  return `tabswarm-dtls\n${connId}\n${from}\n${to}\n${lines.join('\n')}`;
}

/** The sender's `auth` for its SDP. */
export async function signDtls(identity: Identity, connId: string, to: string, sdp: string): Promise<string> {
  const text = dtlsAuthText(connId, identity.id, to, sdp);
  if (text === null) throw new Error('the local SDP names no DTLS fingerprint');
  return identity.sign(text);
}

/** Whether `auth` is `key`'s signature binding `sdp` to the attempt from `from` to `to`. Never throws. */
export async function verifyDtls(key: string | undefined, auth: string, connId: string, from: string, to: string, sdp: string): Promise<boolean> {
  if (key === undefined) return false;
  const text = dtlsAuthText(connId, from, to, sdp);
  return text !== null && verifySignature(key, text, auth);
}
