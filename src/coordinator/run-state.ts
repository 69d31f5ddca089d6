// The coordinator's saved run (docs/resilience.md "Coordinator restart"): everything a restarted coordinator needs to
// re-adopt its swarm and go on — the run config, the room and the coordinator key it belongs to, the step (steps
// completed), the membership epoch, who was a member of which stage and the params digest each stage committed to,
// the checkpoints each peer holds, the step reports (the loss curve), strikes and evictions, and the ledger's signed
// export (credits continue). Written after every completed step (src/coordinator/run-saver.ts); read back with
// parseSavedRun, which refuses a foreign, corrupt, finished, other-room or other-key file as a whole, with a message
// saying why — nothing of a refused file is applied. Pure: no I/O here.
import { z } from 'zod';
import { FINGERPRINT_RE } from '../net/identity';
import { checkpointRefSchema, peerIdSchema } from '../protocol/messages';
import { parseRunConfig, runConfigSchema, type RunConfig } from '../protocol/run-config';
import type { StepReport } from './step-report';
import { MAX_LEDGER_BYTES, verifyLedger, type LedgerDocument } from './ledger-export';

export const RUN_STATE_KIND = 'tabswarm-run-state';
export const RUN_STATE_VERSION = 1;
/** A saved run larger than this is refused unread (the ledger's own bound plus room for the loss curve). */
export const MAX_RUN_STATE_BYTES = MAX_LEDGER_BYTES + 32 * 1024 * 1024;

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** NaN and infinities are JSON null (a non-finite loss or norm is a legitimate figure of a step report). */
const figure = z.number().nullable();
const members = z.array(z.array(peerIdSchema).max(256)).max(256);

const reportSchema = z.object({
  step: count,
  attempts: count.min(1),
  loss: figure,
  lr: figure,
  gradNorm: figure,
  scale: figure,
  members,
  replicasAgree: z.boolean(),
  synced: z.boolean().optional(),
  ms: figure,
});

const savedRunSchema = z.strictObject({
  kind: z.literal(RUN_STATE_KIND),
  version: z.literal(RUN_STATE_VERSION),
  room: z.string().min(1).max(128),
  /** Fingerprint of the coordinator key the run belongs to: only that key may resume it. */
  coordinator: z.string().regex(FINGERPRINT_RE, 'a fingerprint is 64 lowercase hex digits'),
  run: runConfigSchema,
  /** Steps completed. */
  step: count,
  epoch: count,
  /** Members per stage after the last completed step. */
  membership: members,
  /** Per stage: the params digest its replicas committed to at `step` (null: unknown, e.g. local-steps mode). */
  digests: z.array(z.string().max(64).nullable()).max(256),
  holdings: z.array(z.strictObject({ peer: peerIdSchema, checkpoints: z.array(checkpointRefSchema).max(64) })).max(65_536),
  reports: z.array(reportSchema).max(10_000_000),
  /** Write-ahead: the report of step `step`, saved before its update went out (null/absent: none in flight). */
  applying: reportSchema.nullable().optional(),
  strikes: z.array(z.strictObject({ peer: peerIdSchema, strikes: count.min(1) })).max(65_536),
  evicted: z.array(peerIdSchema).max(65_536),
  /** The ledger's latest signed export (null: nothing credited yet). */
  ledger: z.string().max(MAX_LEDGER_BYTES).nullable(),
  savedAt: z.string().min(1).max(40),
});

type SavedRunJson = z.infer<typeof savedRunSchema>;

/** A saved run, checked: its run config parsed, its reports as StepReports, its ledger verified. */
export interface SavedRun extends Omit<SavedRunJson, 'run' | 'reports' | 'ledger' | 'applying'> {
  run: RunConfig;
  reports: StepReport[];
  applying?: StepReport | null;
  /** The ledger export's text (written back as it is) and its verified document. */
  ledger: { text: string; doc: LedgerDocument } | null;
}

/** What a saved run must belong to: the room and the coordinator key that resume it. */
export interface RunOwner {
  room: string;
  coordinator: string;
}

const nullable = (x: number): number | null => (Number.isFinite(x) ? x : null);
const nan = (x: number | null): number => x ?? Number.NaN;

/** The saved run's text (JSON and a newline). */
const reportJson = (r: StepReport): SavedRunJson['reports'][number] => ({
  step: r.step,
  attempts: r.attempts,
  loss: nullable(r.loss),
  lr: nullable(r.lr),
  gradNorm: nullable(r.gradNorm),
  scale: nullable(r.scale),
  members: r.members,
  replicasAgree: r.replicasAgree,
  ...(r.synced === undefined ? {} : { synced: r.synced }),
  ms: nullable(r.ms),
});

export function encodeSavedRun(s: Omit<SavedRun, 'ledger'> & { ledger: { text: string } | null }): string {
  const { applying, ...rest } = s;
  const json: SavedRunJson = {
    ...rest,
    reports: s.reports.map(reportJson),
    ...(applying ? { applying: reportJson(applying) } : {}),
    ledger: s.ledger?.text ?? null,
  };
  return `${JSON.stringify(json)}\n`;
}

export type SavedRunVerdict = { ok: true; saved: SavedRun } | { ok: false; error: string };

/**
 * Reads a saved run and checks that it is one, whole and consistent, that it belongs to `owner` (room and coordinator
 * key), that its run is not finished, and that its ledger export verifies against the coordinator's key. Never throws.
 */
export async function parseSavedRun(text: string, owner: RunOwner): Promise<SavedRunVerdict> {
  try {
    return await parse(text, owner);
  } catch (err) {
    return refuse(`saved run refused: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const refuse = (error: string): SavedRunVerdict => ({ ok: false, error });

async function parse(text: string, owner: RunOwner): Promise<SavedRunVerdict> {
  if (typeof text !== 'string') return refuse('a saved run is text');
  if (text.length > MAX_RUN_STATE_BYTES) return refuse(`saved run larger than ${MAX_RUN_STATE_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return refuse(`saved run is not JSON: ${(err as Error).message}`);
  }
  const kind = (raw as { kind?: unknown } | null)?.kind;
  if (kind !== RUN_STATE_KIND) return refuse(`not a tabswarm saved run (kind ${JSON.stringify(kind)?.slice(0, 64) ?? 'missing'})`);
  const parsed = savedRunSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return refuse(`saved run is damaged: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  const j = parsed.data;
  if (j.room !== owner.room) return refuse(`the saved run is of room "${j.room}", not "${owner.room}"`);
  if (j.coordinator !== owner.coordinator)
    return refuse(`the saved run belongs to coordinator key ${j.coordinator}, not this key ${owner.coordinator}: resume it with that key`);
  const run = parseRunConfig(j.run);
  const stages = run.stages.length;
  if (j.step > run.steps) return refuse(`saved run is damaged: step ${j.step} past the run's ${run.steps} steps`);
  if (j.step === run.steps) return refuse(`run ${run.runId} is finished (all ${run.steps} steps done): nothing to resume`);
  if (j.membership.length !== stages) return refuse(`saved run is damaged: membership of ${j.membership.length} stages, the run has ${stages}`);
  if (j.digests.length !== stages) return refuse(`saved run is damaged: digests of ${j.digests.length} stages, the run has ${stages}`);
  const seen = new Set<string>();
  for (const id of j.membership.flat()) {
    if (seen.has(id)) return refuse(`saved run is damaged: ${id} is a member twice`);
    seen.add(id);
  }
  for (let i = 0; i < j.reports.length; i++) {
    const r = j.reports[i];
    if (r.step >= j.step) return refuse(`saved run is damaged: a report of step ${r.step} at step ${j.step}`);
    if (i > 0 && r.step <= j.reports[i - 1].step) return refuse(`saved run is damaged: step reports out of order at step ${r.step}`);
    if (r.members.length !== stages) return refuse(`saved run is damaged: step ${r.step}'s report has ${r.members.length} stages`);
  }
  for (const h of j.holdings)
    for (const c of h.checkpoints)
      if (c.runId === run.runId && c.stage >= stages) return refuse(`saved run is damaged: ${h.peer} holds stage ${c.stage}`);
  let ledger: SavedRun['ledger'] = null;
  if (j.ledger !== null) {
    const v = await verifyLedger(j.ledger, owner.coordinator);
    if (!v.ok) return refuse(`the saved run's ledger is refused: ${v.error}`);
    if (v.ledger.run !== run.runId) return refuse(`the saved run's ledger is of run ${v.ledger.run}, not ${run.runId}`);
    if (v.ledger.step > j.step + 1) return refuse(`the saved run's ledger credits step ${v.ledger.step - 1}, past the run's step ${j.step}`);
    ledger = { text: j.ledger, doc: v.ledger };
  }
  const reportOf = (r: SavedRunJson['reports'][number]): StepReport => ({
    step: r.step,
    attempts: r.attempts,
    loss: nan(r.loss),
    lr: nan(r.lr),
    gradNorm: nan(r.gradNorm),
    scale: nan(r.scale),
    members: r.members,
    replicasAgree: r.replicasAgree,
    ...(r.synced === undefined ? {} : { synced: r.synced }),
    ms: nan(r.ms),
  });
  const { applying, ...rest } = j;
  if (applying && applying.step !== j.step) return refuse(`saved run is damaged: a write-ahead report of step ${applying.step} at step ${j.step}`);
  if (applying && applying.members.length !== stages)
    return refuse(`saved run is damaged: the write-ahead report has ${applying.members.length} stages`);
  const reports = j.reports.map(reportOf);
  return { ok: true, saved: { ...rest, run, reports, ledger, ...(applying ? { applying: reportOf(applying) } : {}) } };
}
