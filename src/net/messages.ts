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
  /** Swarm: measured training throughput of a short benchmark at join, tokens/s (src/swarm/peer.ts). */
  throughput: z.number().positive().optional(),
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

// ------------------------------------------------------------------------ swarm (docs/swarm.md)
// Coordinator <-> peer messages of the training swarm. `attempt` numbers the tries of one step: a step whose
// members changed before its optimizer update (a peer vanished) is re-run as attempt + 1 from zeroed gradients.

const stepKey = { step: z.number().int().nonnegative(), attempt: z.number().int().nonnegative() };
const membersSchema = z.array(z.array(peerIdSchema).max(256)).min(1).max(256);

/** Coordinator -> peer: your stage of run `run` (a RunConfig, validated by src/coordinator/run-config.ts). */
export const swarmAssignSchema = z.object({
  type: z.literal('swarm-assign'),
  stage: z.number().int().nonnegative(),
  run: z.json(),
});

/**
 * Coordinator -> all: the membership to link up (epoch), with each member's measured speed. `joins`: peers
 * that copy their stage's weights + AdamW state from `source` (a live replica) before they report ready.
 */
export const swarmMembersSchema = z.object({
  type: z.literal('swarm-members'),
  epoch: z.number().int().nonnegative(),
  stages: membersSchema,
  speeds: z.array(z.array(z.number().nonnegative())),
  joins: z.array(z.object({ peer: peerIdSchema, stage: z.number().int().nonnegative(), source: peerIdSchema })).max(256),
  /** The step the run continues at (AdamW's t of a joining replica is step). */
  step: z.number().int().nonnegative(),
});

/** Peer -> coordinator: links for `epoch` are up (and a joining replica holds its stage's state). */
export const swarmReadySchema = z.object({ type: z.literal('swarm-ready'), epoch: z.number().int().nonnegative() });

/** Coordinator -> all: start (an attempt of) a step. Microbatch k is owned by first-stage replica owners[k]. */
export const stepBeginSchema = z.object({
  type: z.literal('step-begin'),
  ...stepKey,
  owners: z.array(peerIdSchema).min(1).max(4096),
  members: membersSchema,
});

/** Last stage -> coordinator: the mean loss of microbatch mb (null if not finite). */
export const mbLossSchema = z.object({ type: z.literal('mb-loss'), ...stepKey, mb: z.number().int().nonnegative(), loss: z.number().nullable() });

/** First stage -> coordinator: backward of microbatch mb finished. */
export const mbDoneSchema = z.object({ type: z.literal('mb-done'), ...stepKey, mb: z.number().int().nonnegative() });

/** Coordinator -> all: every microbatch is done; all-reduce within stages, exchange tied wte gradients. */
export const stepReduceSchema = z.object({ type: z.literal('step-reduce'), ...stepKey, members: membersSchema });

/** Stage leader -> coordinator: sum of squared gradients of its stage (tied wte copy excluded on the last stage). */
export const gradSumsqSchema = z.object({ type: z.literal('grad-sumsq'), ...stepKey, stage: z.number().int().nonnegative(), value: z.number().nonnegative().nullable() });

/** Coordinator -> all: apply AdamW (t = step + 1) with this lr and global clip scale. */
export const stepApplySchema = z.object({ type: z.literal('step-apply'), ...stepKey, scale: z.number().nonnegative(), lr: z.number().nonnegative() });

/** Peer -> coordinator: update applied; digest of the stage's parameters (replicas must agree). */
export const stepDoneSchema = z.object({ type: z.literal('step-done'), ...stepKey, stage: z.number().int().nonnegative(), digest: z.string().max(64) });

export const controlSchemas = {
  'peer-info': peerInfoSchema,
  assign: assignSchema,
  status: statusSchema,
  shutdown: shutdownSchema,
  custom: customSchema,
  'swarm-assign': swarmAssignSchema,
  'swarm-members': swarmMembersSchema,
  'swarm-ready': swarmReadySchema,
  'step-begin': stepBeginSchema,
  'mb-loss': mbLossSchema,
  'mb-done': mbDoneSchema,
  'step-reduce': stepReduceSchema,
  'grad-sumsq': gradSumsqSchema,
  'step-apply': stepApplySchema,
  'step-done': stepDoneSchema,
} as const;

export const controlMessageSchema = z.discriminatedUnion('type', [
  peerInfoSchema,
  assignSchema,
  statusSchema,
  shutdownSchema,
  customSchema,
  swarmAssignSchema,
  swarmMembersSchema,
  swarmReadySchema,
  stepBeginSchema,
  mbLossSchema,
  mbDoneSchema,
  stepReduceSchema,
  gradSumsqSchema,
  stepApplySchema,
  stepDoneSchema,
]);

export type ControlMessage = z.infer<typeof controlMessageSchema>;
export type ControlType = ControlMessage['type'];
export type ControlOf<T extends ControlType> = Extract<ControlMessage, { type: T }>;

/** Largest control message (UTF-8 JSON) accepted anywhere; far below one data-channel message. */
export const MAX_CONTROL_BYTES = 16 * 1024;
