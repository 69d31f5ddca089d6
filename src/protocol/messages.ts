// The swarm's control messages: small typed JSON messages between a room's coordinator and its peers, relayed by
// the signaling server as opaque payloads (src/net knows none of these). One zod schema per message type, one
// discriminated union `controlMessageSchema`; every type is derived from the schemas.
//
// To add a message type: write its schema with a literal `type` and add it to `controlSchemas` and the union.
// Nothing below src/protocol (src/net, signaling-server/) changes.

import { z } from 'zod';
import { peerIdSchema } from '../net/ids';
import { runConfigSchema } from './run-config';
import { stageTimeSchema } from './stage-time';
import { wireBytesSchema } from './wire-categories';
import { digestSigSchema } from './digest-signing';

export { peerIdSchema };

const count = z.number().int().nonnegative();

/**
 * Peer -> coordinator, the first message after joining: the protocol version the peer speaks. This schema is frozen
 * across versions (loose: a later version may add fields), so a coordinator of any version can read it and answer a
 * peer of another version with `refused` — whatever the other messages of that version look like.
 */
export const helloSchema = z.looseObject({
  type: z.literal('hello'),
  /** PROTOCOL_VERSION of the sender. */
  protocol: count,
});

/** A stage checkpoint a peer holds: run, stage, the step it continues at (optimizer steps applied), stateDigest. */
export const checkpointRefSchema = z.object({ runId: z.string().min(1).max(64), stage: count, step: count, digest: z.string().min(1).max(64) });
export type CheckpointRef = z.infer<typeof checkpointRefSchema>;

/** A running member's claim (peer-info.member): its run, stage, steps applied, the attempt it was in, params digest. */
export const memberClaimSchema = z.object({
  runId: z.string().min(1).max(64),
  stage: count,
  step: count,
  attempt: count,
  digest: z.string().max(64),
});
export type MemberClaim = z.infer<typeof memberClaimSchema>;

/** Peer -> coordinator, right after `hello`: what the peer can do. */
export const peerInfoSchema = z.object({
  type: z.literal('peer-info'),
  platform: z.enum(['browser', 'node']),
  gpu: z.boolean(),
  /** Free memory the peer is willing to spend on its model slice, in bytes. */
  memoryBytes: count.optional(),
  /**
   * Its adapter's storage binding limit (maxStorageBufferBindingSize), bytes: a stage whose wte is over it runs the
   * head vocabulary-chunked, which needs less memory (src/model/stage-memory.ts); the coordinator sizes stages by it.
   */
  maxBindingBytes: count.optional(),
  label: z.string().max(128).optional(),
  /** Measured training throughput of a short benchmark at join, tokens/s (src/swarm/peer.ts). */
  throughput: z.number().positive().optional(),
  /** The GPU adapter's kind (e.g. 'lavapipe', 'swiftshader', a vendor): validations compare bitwise within a kind. */
  adapter: z.string().max(128).optional(),
  /** Stage checkpoints this peer holds for this room (docs/resilience.md): a lost stage is restored from them. */
  checkpoints: z.array(checkpointRefSchema).max(16).optional(),
  /**
   * A peer that was a member of the run when its coordinator vanished (or the signaling server restarted) says where
   * it stands, so a resumed coordinator re-adopts it without a state transfer (docs/resilience.md).
   */
  member: memberClaimSchema.optional(),
});

/** Coordinator -> peer: you cannot take part (e.g. another protocol version). The peer stops with `reason`. */
export const refusedSchema = z.object({
  type: z.literal('refused'),
  reason: z.string().max(1024),
  /** The coordinator's PROTOCOL_VERSION. */
  protocol: count,
});

/** Progress or state report, either direction (peers report `error` with the message in `detail`). */
export const statusSchema = z.object({
  type: z.literal('status'),
  state: z.string().min(1).max(64),
  step: count.optional(),
  detail: z.string().max(1024).optional(),
});

/** Ask a peer (or the whole room) to stop. */
export const shutdownSchema = z.object({
  type: z.literal('shutdown'),
  reason: z.string().max(1024).optional(),
});

// ------------------------------------------------------------------------ swarm (docs/swarm.md)
// `attempt` numbers the tries of one step: a step whose members changed before its optimizer update (a peer
// vanished) is re-run as attempt + 1 from zeroed gradients.

const stepKey = { step: count, attempt: count };
const membersSchema = z.array(z.array(peerIdSchema).max(256)).min(1).max(256);

/**
 * Coordinator -> peer: your stage of run `run`. Sent again with another stage to move a running peer (live
 * rebalancing, docs/resilience.md): the peer drops its stage and joins the new one at the next membership.
 */
export const swarmAssignSchema = z.object({
  type: z.literal('swarm-assign'),
  stage: count,
  run: runConfigSchema,
  /** The coordinator adopts this peer's claimed state (peer-info.member): keep the stage as it is. */
  adopt: z.boolean().optional(),
});

/**
 * Coordinator -> all: the membership to link up (epoch), with each member's measured speed. `joins`: peers
 * that copy their stage's weights + AdamW state from `source` (a live replica) before they report ready.
 */
export const swarmMembersSchema = z.object({
  type: z.literal('swarm-members'),
  epoch: count,
  stages: membersSchema,
  speeds: z.array(z.array(z.number().nonnegative()).max(256)).max(256),
  /**
   * `checkpoint`: the source sends its stored checkpoint of `stage` at that step (it need not be a member of the
   * stage: a custodian, docs/resilience.md) instead of its live state.
   */
  joins: z.array(z.object({ peer: peerIdSchema, stage: count, source: peerIdSchema, checkpoint: count.optional() })).max(256),
  /**
   * Peers that load their own stored checkpoint of `stage` at `step` before anything else of this epoch (a lost
   * stage restored, or the whole run rolled back to `step`); they report its digest in swarm-ready.
   */
  restores: z
    .array(z.object({ peer: peerIdSchema, stage: count, step: count, digest: z.string().min(1).max(64) }))
    .max(256)
    .optional(),
  /** The step the run continues at (AdamW's t of a joining replica is step). */
  step: count,
});

/** Peer -> coordinator: links for `epoch` are up (and a joining replica holds its stage's state). */
export const swarmReadySchema = z.object({
  type: z.literal('swarm-ready'),
  epoch: count,
  /** stateDigest of the stage state after a restore or a join (docs/resilience.md); absent otherwise. */
  digest: z.string().max(64).optional(),
});

/**
 * Coordinator -> all: start (an attempt of) a step. Microbatch k is owned by first-stage replica members[0][owners[k]]:
 * an index, not an id, so that M owners cost a few bytes each and a step-begin of thousands of microbatches and
 * hundreds of members fits one signed control message.
 */
export const stepBeginSchema = z
  .object({
    type: z.literal('step-begin'),
    ...stepKey,
    owners: z.array(count).min(1).max(4096),
    members: membersSchema,
  })
  .refine((m) => m.owners.every((o) => o < m.members[0].length), {
    message: 'an owner index past the first stage',
    path: ['owners'],
  });

/** step-begin's owners as peer ids: owners[k] is an index into the first stage's members. */
export function stepOwners(msg: Pick<z.infer<typeof stepBeginSchema>, 'owners' | 'members'>): string[] {
  return msg.owners.map((i) => msg.members[0][i]);
}

/** Last stage -> coordinator: the mean loss of microbatch mb (null if not finite). */
export const mbLossSchema = z.object({ type: z.literal('mb-loss'), ...stepKey, mb: count, loss: z.number().nullable() });

/** First stage -> coordinator: backward of microbatch mb finished. */
export const mbDoneSchema = z.object({ type: z.literal('mb-done'), ...stepKey, mb: count });

/** Coordinator -> all: every microbatch is done; all-reduce within stages, exchange tied wte gradients. */
export const stepReduceSchema = z.object({ type: z.literal('step-reduce'), ...stepKey, members: membersSchema });

const digestSchema = z.string().min(1).max(64);
/** Replicas of a stage a robust report covers: 64 digests and signatures escaped in a signed envelope stay under the control payload cap (they fit the old 16 KiB). */
export const ROBUST_MAX_RANKS = 64;

/**
 * Stage leader -> coordinator: sum of squared gradients of its stage (tied wte copy excluded on the last stage).
 * Robust aggregation (trust.aggregation != 'sum'): every replica reports, with the digest of the gradient it received
 * from each rank (null: none / refused) and the ranks it excluded (non-finite, norm outlier): the coordinator checks
 * that the replicas saw the same vectors (no equivocation) and strikes the excluded.
 */
export const gradSumsqSchema = z.object({
  type: z.literal('grad-sumsq'),
  ...stepKey,
  stage: count,
  value: z.number().nonnegative().nullable(),
  robust: z
    .object({
      digests: z.array(digestSchema.nullable()).max(ROBUST_MAX_RANKS),
      /** The sender's signature of each digest (src/protocol/digest-signing.ts), null where the digest is. */
      sigs: z.array(digestSigSchema.nullable()).max(ROBUST_MAX_RANKS),
      excluded: z.array(z.object({ rank: count, reason: z.string().max(128) })).max(ROBUST_MAX_RANKS),
    })
    .optional(),
});

/**
 * Member -> coordinator at step-reduce (before grad-sumsq): what it computed in this attempt. `backward`: the
 * microbatches whose backward ran here, in order (its gradient accumulated in that order). `sent` / `recv`: the
 * boundary payloads it sent to / received from neighbours as [mb, peer, digest] (to a later stage: activations; to
 * an earlier one: gradients); a received one also carries its sender's signature of the digest
 * (src/protocol/digest-signing.ts payloadSigningText), so a receiver cannot lie about what it got. `contrib`: digest of the stage gradient it contributes to the reduce. `losses`: last
 * stage, [mb, loss]. Neighbours' traces must agree; validators recompute from them (docs/trust.md). A trace larger
 * than one control message is sent in parts (part 0..parts-1; lists concatenate).
 */
const traceEntry = z.tuple([count, peerIdSchema, digestSchema]);
const traceRecvEntry = z.tuple([count, peerIdSchema, digestSchema, digestSigSchema]);
export const stepTraceSchema = z.object({
  type: z.literal('step-trace'),
  ...stepKey,
  stage: count,
  part: count,
  parts: z.number().int().positive().max(256),
  backward: z.array(count).max(1024),
  sent: z.array(traceEntry).max(128),
  recv: z.array(traceRecvEntry).max(128),
  contrib: digestSchema.optional(),
  losses: z
    .array(z.tuple([count, z.number().nullable()]))
    .max(256)
    .optional(),
});

/**
 * Coordinator -> validator and worker: recompute `worker`'s contribution to (step, attempt) at `stage`. The worker
 * uploads its inputs to the validator over their link; the validator replays `backward` with its own weights (the
 * digest both committed to before the step) and compares outputs and gradient to the digests of the traces.
 */
export const validateSchema = z.object({
  type: z.literal('validate'),
  ...stepKey,
  stage: count,
  worker: peerIdSchema,
  validator: peerIdSchema,
  backward: z.array(count).max(1024),
  /** Expected digests from the neighbours' traces: [mb, 'act' | 'grad', digest] of the inputs and of the outputs. */
  inputs: z.array(z.tuple([count, z.enum(['act', 'grad']), digestSchema])).max(256),
  outputs: z.array(z.tuple([count, z.enum(['act', 'grad']), digestSchema])).max(256),
  contrib: digestSchema.optional(),
  /** The params digest both committed to before the step ('none': no step-done yet, e.g. step 0). */
  params: digestSchema,
  /**
   * Worker and validator run on different adapter kinds: the worker also uploads its contribution's values and its
   * outputs, compared within trust.tolerance instead of bitwise (src/swarm/validator.ts).
   */
  values: z.boolean().optional(),
  losses: z
    .array(z.tuple([count, z.number().nullable()]))
    .max(256)
    .optional(),
});

/** Validator -> coordinator: the recomputation matched (bitwise, or within the run's tolerance across adapter kinds). */
export const validationSchema = z.object({
  type: z.literal('validation'),
  ...stepKey,
  stage: count,
  worker: peerIdSchema,
  ok: z.boolean(),
  detail: z.string().max(512),
  /** Largest difference seen: 0 = bitwise equal; across adapter kinds relative to the largest |value|, as trust.tolerance. */
  maxAbsDiff: z.number().nonnegative().nullable(),
});

/** Coordinator -> peer: its verified credits in the run's ledger (docs/trust.md). */
export const creditSchema = z.object({
  type: z.literal('credit'),
  /** This peer's credits (FLOPs of verified forward/backward/validation work, as a number: a display figure; the signed export is exact). */
  credits: z.number().nonnegative(),
  /** All contributors' credits. */
  total: z.number().nonnegative(),
  contributors: count,
  /** This peer's validated contributions, and the strikes against it. */
  validated: count,
  strikes: count,
});

/** Coordinator -> all: apply AdamW (t = step + 1) with this lr and global clip scale. */
export const stepApplySchema = z.object({
  type: z.literal('step-apply'),
  ...stepKey,
  scale: z.number().nonnegative(),
  lr: z.number().nonnegative(),
  /** Local-steps mode: lane r's own clip scale (replica r of every stage uses scales[r]; docs/compression.md). */
  scales: z.array(z.number().nonnegative()).max(256).optional(),
});

/**
 * Coordinator -> all, local-steps mode, after every member confirmed step `step`: the stage's replicas (lanes of
 * `members`) exchange their compressed pseudo-gradients and take the outer Nesterov step (src/swarm/local-sync.ts).
 */
export const syncBeginSchema = z.object({ type: z.literal('sync-begin'), step: count, members: membersSchema });

/** Peer -> coordinator: the outer step after `step` is applied; digest of the stage's parameters (replicas agree). */
export const syncDoneSchema = z.object({
  type: z.literal('sync-done'),
  step: count,
  stage: count,
  digest: z.string().max(64),
  /** Bytes this peer sent since its previous step-done / sync-done, per category (wire accounting). */
  wire: wireBytesSchema.optional(),
});

/**
 * Peer -> coordinator: update applied; digest of the stage's parameters (replicas must agree). `wire`: the bytes
 * this peer sent since its previous step-done, per category (wire accounting, src/protocol/wire-categories.ts).
 */
export const stepDoneSchema = z.object({
  type: z.literal('step-done'),
  ...stepKey,
  stage: count,
  digest: z.string().max(64),
  wire: wireBytesSchema.optional(),
  /**
   * This attempt's compute time here (ms the stage's forward/backward work took, queueing excluded) and the
   * microbatch passes it ran: the coordinator's per-stage load for live rebalancing (docs/resilience.md). `parts`:
   * where the attempt's time went here (src/protocol/stage-time.ts).
   */
  timing: z.object({ busyMs: z.number().nonnegative().max(1e9), passes: count, parts: stageTimeSchema.optional() }).optional(),
});

/** Peer -> coordinator: a stage checkpoint was written (every run.checkpoint.every steps); the coordinator tracks holders. */
export const checkpointSavedSchema = z.object({ type: z.literal('checkpoint-saved'), ...checkpointRefSchema.shape });

/**
 * Coordinator -> the two peers named: `source` (a replica of `stage`) sends its checkpoint of `stage` at `step` to
 * `keeper` (a peer of another stage), which stores it and reports checkpoint-saved: a copy of every stage outside it,
 * so a stage that loses every replica can be restored (docs/resilience.md "Custody").
 */
export const custodySchema = z.object({ type: z.literal('custody'), stage: count, step: count, source: peerIdSchema, keeper: peerIdSchema });

/** Coordinator -> peer: are you alive (a step's microbatches are late)? Answered with `pong` at once. */
export const pingSchema = z.object({ type: z.literal('ping'), nonce: count });
export const pongSchema = z.object({ type: z.literal('pong'), nonce: count });

/** Peer -> coordinator: the data channel to `peer` closed or stopped answering (a frozen or vanished neighbour). */
export const linkDownSchema = z.object({ type: z.literal('link-down'), peer: peerIdSchema, reason: z.string().max(256) });

/**
 * Coordinator -> all: the run is paused (a stage has no live replica and is being restored, or waits for a copy),
 * or goes on (`paused: false`). Pages and the CLI show `reason`.
 */
export const runStateSchema = z.object({ type: z.literal('run-state'), paused: z.boolean(), reason: z.string().max(1024), step: count });

/**
 * Coordinator -> all: this (returning) coordinator has re-adopted the run at `step`: peers re-announce themselves
 * (hello + peer-info with `member`). Also sent by a coordinator whose signaling connection came back.
 */
export const reannounceSchema = z.object({ type: z.literal('reannounce'), runId: z.string().min(1).max(64), step: count });

/**
 * Coordinator -> all, after every completed step: the run's progress, so every peer (not only the last stage,
 * which sees its own microbatch losses) can show the run's loss. Optional: peers work without it.
 */
export const stepReportSchema = z.object({
  type: z.literal('step-report'),
  step: count,
  /** Mean loss of the step (null if not finite). */
  loss: z.number().nullable(),
  /** Wall time of the step, ms. */
  ms: z.number().nonnegative(),
  /** Attempts it took (1 = no restart). */
  attempts: z.number().int().positive(),
  /** Bytes the run has sent so far per category, and what fp32 without a bottleneck would have (wire accounting). */
  wire: wireBytesSchema.optional(),
  fp32: wireBytesSchema.optional(),
  /** Tokens trained so far (steps done x M x B x T). */
  tokens: count.optional(),
});

/**
 * Peer -> coordinator: `peer` sent this peer something it had to drop (e.g. a payload its codec refuses). The
 * coordinator logs it and shows it in the run's events; the lost microbatch re-runs with its step as any other.
 */
export const peerReportSchema = z.object({ type: z.literal('peer-report'), peer: peerIdSchema, reason: z.string().max(512) });

export const controlSchemas = {
  hello: helloSchema,
  'peer-info': peerInfoSchema,
  refused: refusedSchema,
  status: statusSchema,
  shutdown: shutdownSchema,
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
  'step-report': stepReportSchema,
  'peer-report': peerReportSchema,
  'sync-begin': syncBeginSchema,
  'sync-done': syncDoneSchema,
  'step-trace': stepTraceSchema,
  validate: validateSchema,
  validation: validationSchema,
  credit: creditSchema,
  'checkpoint-saved': checkpointSavedSchema,
  custody: custodySchema,
  ping: pingSchema,
  pong: pongSchema,
  'link-down': linkDownSchema,
  'run-state': runStateSchema,
  reannounce: reannounceSchema,
} as const;

export const controlMessageSchema = z.discriminatedUnion('type', [
  helloSchema,
  peerInfoSchema,
  refusedSchema,
  statusSchema,
  shutdownSchema,
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
  stepReportSchema,
  peerReportSchema,
  syncBeginSchema,
  syncDoneSchema,
  stepTraceSchema,
  validateSchema,
  validationSchema,
  creditSchema,
  checkpointSavedSchema,
  custodySchema,
  pingSchema,
  pongSchema,
  linkDownSchema,
  runStateSchema,
  reannounceSchema,
]);

export type ControlMessage = z.infer<typeof controlMessageSchema>;
export type ControlType = ControlMessage['type'];
export type ControlOf<T extends ControlType> = Extract<ControlMessage, { type: T }>;
