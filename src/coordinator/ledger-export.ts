// The ledger's signed export (docs/trust.md "Ledger"): one JSON document {kind, version, run, coordinator {publicKey,
// fingerprint}, step, time, entries (sorted by id), totals, signature}, written in its canonical form (keys sorted,
// no whitespace, integers only; FLOPs as decimal strings, exact past 2^53). `signature` is the coordinator's
// signature of `tabswarm-ledger\n` + the canonical text of the document without it.
//
// verifyLedger() accepts only that canonical text, so any edit — a credit, an id, the key, the signature, an entry
// moved, a field added, even a reformatting — is refused, with a message saying which check failed. It never throws.
import { z } from 'zod';
import { FINGERPRINT_RE, fingerprintOf, idOfKey, PUBLIC_KEY_CHARS, SIGNATURE_CHARS, verifySignature, type Identity } from '../net/identity';
import { peerIdSchema } from '../protocol/messages';
import { creditsOf, type Ledger } from './ledger';

const DOMAIN = 'tabswarm-ledger\n';
/** Exports larger than this are refused unread (a ledger of 100k contributors is about 40 MB: far beyond a swarm). */
export const MAX_LEDGER_BYTES = 64 * 1024 * 1024;

const flops = z.string().regex(/^(0|[1-9][0-9]{0,39})$/, 'FLOPs are a decimal integer string');
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const publicKey = z.string().length(PUBLIC_KEY_CHARS);

const entrySchema = z.strictObject({
  id: peerIdSchema,
  publicKey: publicKey.nullable(),
  credits: flops,
  forward: flops,
  backward: flops,
  validation: flops,
  forwardMicrobatches: count,
  backwardMicrobatches: count,
  recomputedMicrobatches: count,
  validations: count,
  validated: count,
  strikes: count,
  evictedAt: count.nullable(),
});

const bodyShape = {
  kind: z.literal('tabswarm-ledger'),
  version: z.literal(1),
  run: z.string().min(1).max(64),
  coordinator: z.strictObject({ publicKey, fingerprint: z.string().regex(FINGERPRINT_RE, 'a fingerprint is 64 lowercase hex digits') }),
  /** Steps credited. */
  step: count,
  /** When it was signed (ISO 8601). */
  time: z.string().min(1).max(40),
  entries: z.array(entrySchema).max(1_000_000),
  totals: z.strictObject({ credits: flops, contributors: count }),
};
const documentSchema = z.strictObject({ ...bodyShape, signature: z.string().length(SIGNATURE_CHARS) });

export type LedgerExportEntry = z.infer<typeof entrySchema>;
export type LedgerDocument = z.infer<typeof documentSchema>;
export type LedgerBody = Omit<LedgerDocument, 'signature'>;

/** Canonical JSON: object keys sorted, no whitespace, numbers only as safe integers. */
export function canonicalJson(x: unknown): string {
  if (x === null || typeof x === 'boolean' || typeof x === 'string') return JSON.stringify(x);
  if (typeof x === 'number') {
    if (!Number.isSafeInteger(x)) throw new Error(`canonical JSON holds integers only, not ${x}`);
    return JSON.stringify(x);
  }
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (typeof x === 'object') {
    const o = x as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new Error(`canonical JSON cannot hold a ${typeof x}`);
}

/** The document `ledger` stands for now (unsigned). */
export function ledgerBody(ledger: Ledger, coordinator: { publicKey: string; fingerprint: string }, time: Date): LedgerBody {
  const entries = ledger.entries().map((e) => ({
    id: e.id,
    publicKey: e.publicKey,
    credits: creditsOf(e).toString(),
    forward: e.forward.toString(),
    backward: e.backward.toString(),
    validation: e.validation.toString(),
    forwardMicrobatches: e.forwardMicrobatches,
    backwardMicrobatches: e.backwardMicrobatches,
    recomputedMicrobatches: e.recomputedMicrobatches,
    validations: e.validations,
    validated: e.validated,
    strikes: e.strikes,
    evictedAt: e.evictedAt,
  }));
  return {
    kind: 'tabswarm-ledger',
    version: 1,
    run: ledger.run.runId,
    coordinator: { publicKey: coordinator.publicKey, fingerprint: coordinator.fingerprint },
    step: ledger.step,
    time: time.toISOString(),
    entries,
    totals: { credits: ledger.total().toString(), contributors: ledger.contributors() },
  };
}

/** The signed export's text (canonical JSON and a newline), signed by `coordinator`. */
export function exportLedger(ledger: Ledger, coordinator: Identity, time: Date = new Date()): Promise<string> {
  return signLedgerBody(ledgerBody(ledger, coordinator, time), coordinator);
}

/** Signs a body taken earlier (ledgerBody: a snapshot, so the ledger may move on while the signature is made). */
export async function signLedgerBody(body: LedgerBody, coordinator: Identity): Promise<string> {
  const signature = await coordinator.sign(DOMAIN + canonicalJson(body));
  return `${canonicalJson({ ...body, signature })}\n`;
}

export type LedgerVerdict = { ok: true; ledger: LedgerDocument } | { ok: false; error: string };

const refuse = (error: string): LedgerVerdict => ({ ok: false, error });

/**
 * Checks an export: its form (the schema, canonical text), that the embedded key's fingerprint is `expected` (the
 * coordinator the verifier trusts), the signature with that key, and that its figures add up. Never throws.
 */
export async function verifyLedger(text: string, expected: string): Promise<LedgerVerdict> {
  try {
    return await verify(text, expected);
  } catch (err) {
    return refuse(`ledger refused: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function verify(text: string, expected: string): Promise<LedgerVerdict> {
  if (!FINGERPRINT_RE.test(expected)) return refuse('the expected coordinator fingerprint must be 64 lowercase hex digits');
  if (typeof text !== 'string') return refuse('a ledger export is text');
  if (text.length > MAX_LEDGER_BYTES) return refuse(`ledger export larger than ${MAX_LEDGER_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return refuse(`not JSON: ${(err as Error).message}`);
  }
  const parsed = documentSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return refuse(`not a tabswarm ledger export: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  const doc = parsed.data;
  if (text !== `${canonicalJson(doc)}\n` && text !== canonicalJson(doc)) return refuse('not in canonical form: the export was edited or reformatted');
  const fp = await fingerprintOf(doc.coordinator.publicKey);
  if (fp === null) return refuse('coordinator.publicKey is not a P-256 public key');
  if (fp !== doc.coordinator.fingerprint)
    return refuse(`coordinator.fingerprint ${doc.coordinator.fingerprint} is not the fingerprint of its publicKey (${fp})`);
  if (fp !== expected) return refuse(`signed by coordinator ${fp}, not by the expected ${expected}`);
  const { signature, ...body } = doc;
  if (!(await verifySignature(doc.coordinator.publicKey, DOMAIN + canonicalJson(body), signature)))
    return refuse('bad signature: the ledger was edited after it was signed, or signed by another key');
  return consistent(doc);
}

/** A signed export whose figures do not add up is refused too (a coordinator's bug must not pass as a ledger). */
async function consistent(doc: LedgerDocument): Promise<LedgerVerdict> {
  let total = 0n;
  let contributors = 0;
  for (let i = 0; i < doc.entries.length; i++) {
    const e = doc.entries[i];
    if (i > 0 && !(doc.entries[i - 1].id < e.id)) return refuse(`entries are not sorted by id (unique) at ${e.id}`);
    const credits = BigInt(e.forward) + BigInt(e.backward) + BigInt(e.validation);
    if (credits !== BigInt(e.credits)) return refuse(`entry ${e.id}: credits ${e.credits} != forward + backward + validation (${credits})`);
    if (e.publicKey !== null && (await idOfKey(e.publicKey)) !== e.id) return refuse(`entry ${e.id}: its publicKey is not that id's key`);
    total += credits;
    if (credits > 0n) contributors++;
  }
  if (BigInt(doc.totals.credits) !== total) return refuse(`totals.credits ${doc.totals.credits} != the entries' sum ${total}`);
  if (doc.totals.contributors !== contributors) return refuse(`totals.contributors ${doc.totals.contributors} != ${contributors}`);
  return { ok: true, ledger: doc };
}
