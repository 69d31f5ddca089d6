// Writes the ledger export atomically (a temporary file beside it, then a rename), so a reader never sees half a
// ledger even when the coordinator is killed mid-write.
import { renameSync, writeFileSync } from 'node:fs';

export function writeLedgerFile(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
}
