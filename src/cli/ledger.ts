// `tabswarm ledger verify FILE --coordinator FP`: checks a ledger export (src/coordinator/ledger-export.ts) against
// the coordinator key the verifier trusts (its fingerprint, as in the join URL). Prints the ledger on success; a
// refused export exits 1 with the reason.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { verifyLedger } from '../coordinator/ledger-export';
import { UsageError } from './args';

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const ledgerSummary = 'verify a signed contribution ledger export';

export const ledgerHelp = `tabswarm ledger verify FILE --coordinator FP
                                  check a ledger export (--ledger of coordinator / demo): its signature with the
                                  embedded key, whose fingerprint must be FP (64 hex); any edit fails`;

export async function ledger(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { coordinator: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const [sub, file, ...extra] = parsed.positionals;
  if (sub !== 'verify') throw new UsageError(sub ? `unknown ledger command "${sub}"` : 'give a ledger command: verify');
  if (!file || extra.length) throw new UsageError('give one ledger file');
  const fp = parsed.values.coordinator;
  if (!fp) throw new UsageError('--coordinator FP (the coordinator key fingerprint, 64 hex) is required');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    console.error(`tabswarm ledger verify: cannot read ${file}: ${(e as Error).message}`);
    return 1;
  }
  const v = await verifyLedger(text, fp.toLowerCase());
  if (!v.ok) {
    console.error(`tabswarm ledger verify: ${file}: REFUSED: ${v.error}`);
    return 1;
  }
  const l = v.ledger;
  const total = BigInt(l.totals.credits);
  console.log(
    `${file}: OK, signed by coordinator ${l.coordinator.fingerprint} at ${l.time}: run ${l.run}, ${l.step} step(s), ` +
      `${l.totals.contributors} contributor(s), ${l.totals.credits} FLOPs`,
  );
  for (const e of l.entries) {
    const share = total > 0n ? Number((BigInt(e.credits) * 1_000_000n) / total) / 10_000 : 0;
    console.log(
      `  ${e.id}  ${e.credits} FLOPs (${share.toFixed(2)}%)  fwd ${e.forwardMicrobatches} bwd ${e.backwardMicrobatches} ` +
        `replayed ${e.recomputedMicrobatches}  validated ${e.validated}  strikes ${e.strikes}${e.evictedAt !== null ? `  EVICTED at step ${e.evictedAt}` : ''}`,
    );
  }
  return 0;
}
