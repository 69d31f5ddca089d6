// The signaling wire protocol: JSON over one WebSocket per peer. One schema per message type, in two
// discriminated unions (client -> server, server -> client). Shared by the server and the client so both sides
// check exactly the same shapes. The control plane's payloads are opaque here (control-envelope.ts): the server
// checks the envelope (type, addressing, room, size, nesting depth) and relays payloads it does not interpret.

import { z } from 'zod';
import { controlPayloadSchema, MAX_CONTROL_DEPTH } from './control-envelope';
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

export const offerSchema = z.strictObject({ kind: z.literal('offer'), sdp: z.string().min(1).max(MAX_SDP_CHARS) });
export const answerSchema = z.strictObject({ kind: z.literal('answer'), sdp: z.string().min(1).max(MAX_SDP_CHARS) });
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

export const joinSchema = z.strictObject({
  type: z.literal('join'),
  room: roomIdSchema,
  /** Omit to get a server-assigned id. */
  peerId: peerIdSchema.optional(),
  role: roleSchema,
});

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

export const peerSummarySchema = z.strictObject({ peerId: peerIdSchema, role: roleSchema });
export type PeerSummary = z.infer<typeof peerSummarySchema>;

export const joinedSchema = z.strictObject({
  type: z.literal('joined'),
  room: roomIdSchema,
  peerId: peerIdSchema,
  role: roleSchema,
  peers: z.array(peerSummarySchema),
});
export const peerJoinedSchema = z.strictObject({ type: z.literal('peer-joined'), peerId: peerIdSchema, role: roleSchema });
export const peerLeftSchema = z.strictObject({ type: z.literal('peer-left'), peerId: peerIdSchema, role: roleSchema });
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
  'already-joined',
  'peer-id-taken',
  'room-full',
  'unknown-peer', // addressee is not in this room
  'coordinator-taken',
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
