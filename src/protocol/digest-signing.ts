// What a sender signs about the tensors it sends (docs/trust.md "Robust aggregation", "Validators"): the digest of a
// robust-grad vector or of a boundary payload, with the slot it fills. A receiver reports the digest it got together
// with the sender's signature, so the coordinator can tell a receiver that lies about what it got (no valid signature:
// the reporter is struck) from a sender that sent different things to different receivers (two valid signatures on
// different digests for one slot: the sender is struck).
import { z } from 'zod';
import { SIGNATURE_CHARS } from '../net/identity';

/** A digest as step-trace names them: hex of the first 16 bytes of SHA-256 (src/swarm/step-trace.ts digestBytes). */
export const signedDigestSchema = z.string().regex(/^[0-9a-f]{32}$/);
/** A base64url P-256 signature (src/net/identity.ts). */
export const digestSigSchema = z.string().length(SIGNATURE_CHARS);

export interface RobustSlot {
  runId: string;
  step: number;
  attempt: number;
  stage: number;
  rank: number;
}

/** The text the sender of replica `rank`'s robust-grad vector signs. */
export function robustSigningText(s: RobustSlot, digest: string): string {
  return `tabswarm-robust\n${s.runId}\n${s.step}\n${s.attempt}\n${s.stage}\n${s.rank}\n${digest}`;
}

export interface PayloadSlot {
  runId: string;
  step: number;
  attempt: number;
  mb: number;
  kind: 'act' | 'grad';
  /** The receiver's id. */
  to: string;
}

/** The text the sender of a boundary payload (activations, activation gradients) signs. */
export function payloadSigningText(s: PayloadSlot, digest: string): string {
  return `tabswarm-payload\n${s.runId}\n${s.step}\n${s.attempt}\n${s.mb}\n${s.kind}\n${s.to}\n${digest}`;
}

/** Who signs (an Identity) and whose keys a receiver checks signatures with (the signaling client's keyOf). */
export interface DigestSigner {
  sign(data: string): Promise<string>;
}
export type KeyLookup = (peerId: string) => string | undefined;
