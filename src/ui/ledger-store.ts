// The coordinator page keeps each step's signed ledger export in IndexedDB (idb-keyval), so the ledger of the last
// run survives a reload and can still be downloaded; and it hands an export (or a checkpoint) to the person as a file.
import { get, set } from 'idb-keyval';

const LAST = 'tabswarm-ledger:last';

export interface StoredLedger {
  runId: string;
  text: string;
}

/** Keeps `text` as run `runId`'s ledger and as the latest one. */
export async function storeLedger(runId: string, text: string): Promise<void> {
  const entry: StoredLedger = { runId, text };
  await Promise.all([set(`tabswarm-ledger:run:${runId}`, entry), set(LAST, entry)]);
}

/** The latest ledger this browser kept (null: none, or IndexedDB unavailable). */
export async function lastLedger(): Promise<StoredLedger | null> {
  try {
    const v: unknown = await get(LAST);
    if (v && typeof v === 'object' && typeof (v as StoredLedger).runId === 'string' && typeof (v as StoredLedger).text === 'string')
      return v as StoredLedger;
  } catch {
    // private mode / no IndexedDB: nothing kept
  }
  return null;
}

/** Offers `text` as a download named `name`. */
export function downloadText(name: string, text: string): void {
  download(name, new Blob([text], { type: 'application/json' }));
}

/** Offers `bytes` (a checkpoint) as a download named `name`. */
export function downloadBytes(name: string, bytes: Uint8Array): void {
  download(name, new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
}

function download(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
