// The coordinator page keeps its run in IndexedDB (idb-keyval) after every step (docs/resilience.md "Coordinator
// restart"), per room: a reloaded page finds an unfinished run of its room and its key (src/ui/key-store.ts keeps the
// key across reloads) and resumes it, re-adopting the swarm. A saved run that does not parse, or is of another key,
// or finished, is not resumed (run-state.ts says why; logged).
import { del, get, set } from 'idb-keyval';
import { parseSavedRun, type RunOwner, type SavedRun } from '../coordinator/run-state';

const keyOf = (room: string): string => `tabswarm-run:${room}`;

/** Keeps the saved run's text for `room` (the latest step's). */
export async function storeRun(room: string, text: string): Promise<void> {
  await set(keyOf(room), text);
}

/** Forgets `room`'s saved run (it finished or was stopped: nothing to resume). */
export async function forgetRun(room: string): Promise<void> {
  await del(keyOf(room));
}

/** The unfinished run of `owner.room` saved by this key, or null (none, refused, finished, or no IndexedDB). */
export async function savedRunOf(owner: RunOwner, log: (s: string) => void = (s) => console.warn(s)): Promise<SavedRun | null> {
  let text: unknown;
  try {
    text = await get(keyOf(owner.room));
  } catch {
    return null; // private mode / no IndexedDB: nothing kept
  }
  if (typeof text !== 'string') return null;
  const v = await parseSavedRun(text, owner);
  if (v.ok) return v.saved;
  log(`saved run of room "${owner.room}" not resumed: ${v.error}`);
  if (/is finished/.test(v.error)) await del(keyOf(owner.room)).catch(() => undefined);
  return null;
}
