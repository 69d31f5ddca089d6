// `tabswarm coordinator --state FILE / --resume`: the coordinator's saved run on disk (src/coordinator/run-state.ts).
// Written after every completed step to a temporary name beside it, flushed, then renamed over it, so a coordinator
// killed mid-write leaves the previous step's file whole. Read back refusing (with the reason) a file that is absent,
// damaged, of another room or key, or of a finished run.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseSavedRun, type RunOwner, type SavedRun } from '../coordinator/run-state';

/** ~/.tabswarm/runs/<room>.json (the room's name made safe for a file name). */
export function defaultStatePath(room: string): string {
  return join(homedir(), '.tabswarm', 'runs', `${room.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
}

export function writeStateFile(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** The saved run at `path` for `owner`, or an Error saying why it cannot be resumed. */
export async function readStateFile(path: string, owner: RunOwner): Promise<SavedRun> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `--resume: no saved run at ${path} (a coordinator saves its run there after every step; --state FILE names another)`
        : `--resume: cannot read ${path}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const v = await parseSavedRun(text, owner);
  if (!v.ok) throw new Error(`--resume: ${path}: ${v.error}`);
  return v.saved;
}
