// Control-plane messages: small typed JSON messages between a room's coordinator and its peers (relayed by the
// signaling server) and between two peers (over their data channel). One zod schema per message type, collected
// in `controlSchemas`; the `ControlMessage` union is derived from it.
//
// To add a message type (the swarm issue will): write its schema with a literal `type`, add it to
// `controlSchemas`. The server and every transport validate against `controlMessageSchema`, so an unknown or
// malformed control message never reaches swarm code.

import { z } from 'zod';

export const peerIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'peer ids are 1-64 characters of [A-Za-z0-9_.:-]');

export const roomIdSchema = peerIdSchema;

/** A peer announces what it can do (sent once after joining, to the coordinator). */
export const peerInfoSchema = z.object({
  type: z.literal('peer-info'),
  platform: z.enum(['browser', 'node']),
  gpu: z.boolean(),
  /** Free memory the peer is willing to spend on its model slice, in bytes. */
  memoryBytes: z.number().int().nonnegative().optional(),
  label: z.string().max(128).optional(),
});

/** The coordinator assigns a pipeline position. `prev`/`next` are the neighbours' peer ids (null at the ends). */
export const assignSchema = z.object({
  type: z.literal('assign'),
  stage: z.number().int().nonnegative(),
  stages: z.number().int().positive(),
  prev: peerIdSchema.nullable(),
  next: peerIdSchema.nullable(),
  /** Layer range [first, last) this stage owns. */
  layers: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]).optional(),
});

/** Progress or state report, either direction. */
export const statusSchema = z.object({
  type: z.literal('status'),
  state: z.string().min(1).max(64),
  step: z.number().int().nonnegative().optional(),
  detail: z.string().max(1024).optional(),
});

/** Ask a peer (or the whole room) to stop. */
export const shutdownSchema = z.object({
  type: z.literal('shutdown'),
  reason: z.string().max(1024).optional(),
});

/** Free-form application message for experiments; `body` is bounded JSON. Prefer a dedicated type for real use. */
export const customSchema = z.object({
  type: z.literal('custom'),
  name: z.string().min(1).max(64),
  body: z.json().optional(),
});

export const controlSchemas = {
  'peer-info': peerInfoSchema,
  assign: assignSchema,
  status: statusSchema,
  shutdown: shutdownSchema,
  custom: customSchema,
} as const;

export const controlMessageSchema = z.discriminatedUnion('type', [
  peerInfoSchema,
  assignSchema,
  statusSchema,
  shutdownSchema,
  customSchema,
]);

export type ControlMessage = z.infer<typeof controlMessageSchema>;
export type ControlType = ControlMessage['type'];
export type ControlOf<T extends ControlType> = Extract<ControlMessage, { type: T }>;

/** Largest control message (UTF-8 JSON) accepted anywhere; far below one data-channel message. */
export const MAX_CONTROL_BYTES = 16 * 1024;
