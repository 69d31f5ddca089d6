// The signaling wire protocol: JSON over one WebSocket per peer. One schema per message type, in two
// discriminated unions (client -> server, server -> client). Shared by the server and the client so both sides
// check exactly the same shapes. The control plane's payloads are opaque here (control-envelope.ts): the server
// checks the envelope (type, addressing, room, size, nesting depth) and relays payloads it does not interpret.

import { z } from 'zod';
import { controlPayloadSchema, MAX_CONTROL_DEPTH } from './control-envelope';
import { PUBLIC_KEY_CHARS, SIGNATURE_CHARS } from './identity';
import { peerIdSchema, roomIdSchema } from './ids';

/** Deepest nesting of a whole signaling message: a control payload inside its envelope object. */
export const MAX_SIGNALING_DEPTH = MAX_CONTROL_DEPTH + 1;

export const roleSchema = z.enum(['peer', 'coordinator']);
export type Role = z.infer<typeof roleSchema>;

/** Identifies one connection attempt, so signals of an abandoned attempt cannot confuse its retry. */
export const connIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/);

const MAX_SDP_CHARS = 32 * 1024;

const B64URL = /^[A-Za-z0-9_-]+$/;
/** A key's fingerprint (hex SHA-256 of the raw public key): names a room's coordinator. */
export const fingerprintSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a fingerprint is 64 lowercase hex digits');
/** base64url raw uncompressed P-256 public key (identity.ts). */
export const publicKeySchema = z.string().length(PUBLIC_KEY_CHARS).regex(B64URL, 'a public key is base64url');
/** base64url P1363 ECDSA signature (identity.ts). */
export const signatureSchema = z.string().length(SIGNATURE_CHARS).regex(B64URL, 'a signature is base64url');
/** The server's challenge: 32 random bytes, base64url. */
export const nonceSchema = z.string().length(43).regex(B64URL);
/** A room's join token: printable ASCII, bounded. */
export const tokenSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, 'a join token is 1-256 printable ASCII characters');

/**
 * Offer and answer carry `auth`: the sender's signature of dtlsAuthText(connId, from, to, sdp), which binds the DTLS
 * certificate the SDP names to the sender's identity (src/net/dtls-auth.ts).
 */
export const offerSchema = z.strictObject({ kind: z.literal('offer'), sdp: z.string().min(1).max(MAX_SDP_CHARS), auth: signatureSchema });
export const answerSchema = z.strictObject({ kind: z.literal('answer'), sdp: z.string().min(1).max(MAX_SDP_CHARS), auth: signatureSchema });
export const candidateSchema = z.strictObject({
  kind: z.literal('candidate'),
  candidate: z.string().max(2048),
  sdpMid: z.string().max(64).nullable(),
  sdpMLineIndex: z.number().int().nonnegative().max(1024).nullable(),
});
/** The dialer gave up on this attempt (timeout before a retry): the answerer frees its half. */
export const abortSchema = z.strictObject({ kind: z.literal('abort'), reason: z.string().max(256).optional() });

export const signalDataSchema = z.discriminatedUnion('kind', [offerSchema, answerSchema, candidateSchema, abortSchema]);
export type SignalData = z.infer<typeof signalDataSchema>;

// ---- client -> server -------------------------------------------------------------------------------------------

/**
 * `sig` is `key`'s signature of joinText(nonce, room, role, coordinator): proof that the client holds the key. The
 * member id is idOfKey(key). The room is (coordinator, room); role 'coordinator' only with the key whose
 * fingerprint is `coordinator`. `tokenHash` (coordinator only): hex SHA-256 of the join token peers must present.
 */
export const joinSchema = z.strictObject({
  type: z.literal('join'),
  room: roomIdSchema,
  role: roleSchema,
  coordinator: fingerprintSchema,
  key: publicKeySchema,
  sig: signatureSchema,
  token: tokenSchema.optional(),
  tokenHash: fingerprintSchema.optional(),
});

/** What a join's `sig` signs. */
export function joinText(nonce: string, room: string, role: Role, coordinator: string): string {
  return `tabswarm-join\n${nonce}\n${room}\n${role}\n${coordinator}`;
}

export const signalOutSchema = z.strictObject({
  type: z.literal('signal'),
  to: peerIdSchema,
  connId: connIdSchema,
  data: signalDataSchema,
});

/** Control plane. A peer's message goes to the room's coordinator; the coordinator addresses a peer or '*' (all). */
export const controlOutSchema = z.strictObject({
  type: z.literal('control'),
  to: z.union([peerIdSchema, z.literal('*')]).optional(),
  msg: controlPayloadSchema,
});

export const pingOutSchema = z.strictObject({ type: z.literal('ping'), nonce: z.number().int().optional() });

export const clientMessageSchema = z.discriminatedUnion('type', [joinSchema, signalOutSchema, controlOutSchema, pingOutSchema]);
export type ClientMessage = z.infer<typeof clientMessageSchema>;

// ---- server -> client -------------------------------------------------------------------------------------------

/** Sent once, on connect: the nonce the join must sign. */
export const challengeSchema = z.strictObject({ type: z.literal('challenge'), nonce: nonceSchema });

/** A room member: its id (idOfKey(key)), role and public key, so every member can verify every other's signatures. */
export const peerSummarySchema = z.strictObject({ peerId: peerIdSchema, role: roleSchema, key: publicKeySchema });
export type PeerSummary = z.infer<typeof peerSummarySchema>;

export const joinedSchema = z.strictObject({
  type: z.literal('joined'),
  room: roomIdSchema,
  coordinator: fingerprintSchema,
  peerId: peerIdSchema,
  role: roleSchema,
  peers: z.array(peerSummarySchema).max(4096),
});
export const peerJoinedSchema = z.strictObject({ type: z.literal('peer-joined'), peerId: peerIdSchema, role: roleSchema, key: publicKeySchema });
export const peerLeftSchema = z.strictObject({ type: z.literal('peer-left'), peerId: peerIdSchema, role: roleSchema, key: publicKeySchema });
export const signalInSchema = z.strictObject({
  type: z.literal('signal'),
  from: peerIdSchema,
  connId: connIdSchema,
  data: signalDataSchema,
});
export const controlInSchema = z.strictObject({ type: z.literal('control'), from: peerIdSchema, msg: controlPayloadSchema });
export const pongInSchema = z.strictObject({ type: z.literal('pong'), nonce: z.number().int().optional() });

export const ERROR_CODES = [
  'malformed', // not JSON, or not an object with a known `type`
  'invalid', // a known type whose fields fail its schema
  'too-large', // message over the size limit
  'too-deep', // arrays/objects nested deeper than MAX_SIGNALING_DEPTH
  'rate-limited', // over the per-connection message rate
  'not-joined', // anything but join before joining
  'already-joined', // a second join (also while the first is being verified)
  'bad-signature', // the join's sig is not its key's signature of the challenge (or the key is malformed)
  'not-coordinator', // role coordinator with a key whose fingerprint is not the room's
  'bad-token', // the room requires a join token and this one is missing or wrong
  'busy', // too many joins being verified at once: retry
  'room-full',
  'unknown-peer', // addressee is not in this room
  'no-coordinator',
  'forbidden', // e.g. a peer addressing another peer on the control plane
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const errorSchema = z.strictObject({
  type: z.literal('error'),
  code: z.enum(ERROR_CODES),
  message: z.string(),
  /** Strikes left before the server closes this connection. */
  strikesLeft: z.number().int().nonnegative(),
});

export const serverMessageSchema = z.discriminatedUnion('type', [
  challengeSchema,
  joinedSchema,
  peerJoinedSchema,
  peerLeftSchema,
  signalInSchema,
  controlInSchema,
  pongInSchema,
  errorSchema,
]);
export type ServerMessage = z.infer<typeof serverMessageSchema>;
export type ServerMessageOf<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

/** WebSocket close code the server uses when a client exhausted its strikes (RFC 6455 "policy violation"). */
export const CLOSE_POLICY_VIOLATION = 1008;
/** WebSocket close code for a connection whose handling failed unexpectedly (RFC 6455 "internal error"). */
export const CLOSE_INTERNAL_ERROR = 1011;
/** Close code of a connection replaced by a newer one with the same key (a reloaded tab). */
export const CLOSE_REPLACED = 4001;
/** Close code of a peer removed because the coordinator that arrived requires a join token it did not present. */
export const CLOSE_NO_TOKEN = 4003;
