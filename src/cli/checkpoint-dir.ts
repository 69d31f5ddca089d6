// A Node peer's stage checkpoints in a directory (docs/resilience.md, "Checkpoints"):
//   <dir>/<runId>/stage<S>-step<N>.safetensors     (src/swarm/checkpoint-codec.ts)
// A save writes a temporary name in the same directory, fsyncs it, renames it over the final name and fsyncs the
// directory, so a crash mid-write leaves the older checkpoints readable and at worst a temporary file, which listing
// ignores and a later save of that run removes. One store per peer identity; its operations run one at a time.
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkpointHeaderLength, checkpointHeaderOf, decodeStageCheckpoint, encodeStageCheckpoint } from '../swarm/checkpoint-codec';
import type { CheckpointRef, CheckpointStore, StageCheckpoint } from '../swarm/checkpoints';

const FILE = /^stage(0|[1-9][0-9]*)-step(0|[1-9][0-9]*)\.safetensors$/;
const TEMP = /^\.stage[0-9]+-step[0-9]+\.safetensors\.[0-9a-z-]+\.tmp$/;
/** A temporary file older than this is a crashed save's leftover (a live save takes far less). */
const STALE_TEMP_MS = 60_000;

/** The default directory of a peer's checkpoints: ~/.tabswarm/checkpoints/<peer id>/. */
export function defaultCheckpointDir(peerId: string): string {
  return join(homedir(), '.tabswarm', 'checkpoints', peerId);
}

/**
 * `--checkpoint-dir DIR` of `tabswarm peer`: the store, or undefined for `none`. Default: per peer id under
 * ~/.tabswarm/checkpoints/; for an ephemeral key (no identity to come back with) a temporary directory, `temporary`
 * (the caller removes it at exit).
 */
export function checkpointDirFromFlag(
  flag: string | undefined,
  peerId: string,
  opts: { ephemeral?: boolean; log?: (s: string) => void } = {},
): { store: CheckpointDir; temporary: boolean } | undefined {
  if (flag === 'none') return undefined;
  if (flag !== undefined && flag !== '') return { store: new CheckpointDir(flag, opts.log), temporary: false };
  if (opts.ephemeral) return { store: new CheckpointDir(join(tmpdir(), `tabswarm-checkpoints-${peerId}`), opts.log), temporary: true };
  return { store: new CheckpointDir(defaultCheckpointDir(peerId), opts.log), temporary: false };
}

/** A run id as a directory name: run ids are [A-Za-z0-9_.:-]+; ':' and '.' are escaped so '..' is no path. */
function runDir(runId: string): string {
  return runId.replace(/[%:.]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function fileName(stage: number, step: number): string {
  return `stage${stage}-step${step}.safetensors`;
}

let tempCounter = 0;

export class CheckpointDir implements CheckpointStore {
  private chain: Promise<unknown> = Promise.resolve();
  /** Refs read from file headers, by path (size and mtime tell a replaced file). */
  private readonly refs = new Map<string, { size: number; mtimeMs: number; ref: CheckpointRef }>();

  constructor(
    readonly dir: string,
    private readonly log: (s: string) => void = () => undefined,
  ) {}

  /** Runs `op` after every operation started before it (one at a time per store). */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op);
    this.chain = p.catch(() => undefined);
    return p;
  }

  save(ck: StageCheckpoint, keep: number): Promise<void> {
    const bytes = encodeStageCheckpoint(ck); // refuses a checkpoint whose digest is not its state, before any I/O
    return this.serial(async () => {
      const dir = join(this.dir, runDir(ck.runId));
      await mkdir(dir, { recursive: true });
      const name = fileName(ck.stage, ck.step);
      const tmp = join(dir, `.${name}.${process.pid}-${(tempCounter++).toString(36)}.tmp`);
      const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(dir, name));
      await syncDir(dir);
      await this.trim(dir, ck.stage, keep);
    });
  }

  /** Keeps the newest `keep` checkpoints of `stage` in `dir`; removes stale temporary files. */
  private async trim(dir: string, stage: number, keep: number): Promise<void> {
    const steps: number[] = [];
    for (const f of await readdir(dir)) {
      const m = FILE.exec(f);
      if (m && Number(m[1]) === stage) steps.push(Number(m[2]));
      else if (TEMP.test(f)) {
        const st = await stat(join(dir, f)).catch(() => null);
        if (st && Date.now() - st.mtimeMs > STALE_TEMP_MS) await unlink(join(dir, f)).catch(() => undefined);
      }
    }
    steps.sort((a, b) => b - a);
    for (const step of steps.slice(Math.max(1, keep))) await this.remove(join(dir, fileName(stage, step)));
  }

  private async remove(path: string): Promise<void> {
    this.refs.delete(path);
    await unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  list(): Promise<CheckpointRef[]> {
    return this.serial(async () => {
      const out: CheckpointRef[] = [];
      for (const run of await readdirOrEmpty(this.dir)) {
        const dir = join(this.dir, run);
        for (const f of await readdirOrEmpty(dir)) {
          const m = FILE.exec(f);
          if (!m) continue;
          const ref = await this.refOf(join(dir, f));
          // A file whose header does not say what its name says is not listed (load() deletes it when asked).
          if (ref && runDir(ref.runId) === run && ref.stage === Number(m[1]) && ref.step === Number(m[2])) out.push(ref);
        }
      }
      return out.sort((a, b) => b.step - a.step || a.stage - b.stage || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
    });
  }

  /** The ref of the file at `path` from its header (cached), or null when unreadable. */
  private async refOf(path: string): Promise<CheckpointRef | null> {
    try {
      const st = await stat(path);
      const c = this.refs.get(path);
      if (c && c.size === st.size && c.mtimeMs === st.mtimeMs) return c.ref;
      const fh = await open(path, 'r');
      let head: Uint8Array;
      try {
        const first = new Uint8Array(8);
        await fh.read(first, 0, 8, 0);
        const len = checkpointHeaderLength(first);
        if (len > st.size || len > 1 << 20) throw new Error(`header of ${len} bytes`);
        head = new Uint8Array(len);
        await fh.read(head, 0, len, 0);
      } finally {
        await fh.close();
      }
      const h = checkpointHeaderOf(head);
      const ref: CheckpointRef = { runId: h.runId, stage: h.stage, step: h.step, digest: h.digest };
      this.refs.set(path, { size: st.size, mtimeMs: st.mtimeMs, ref });
      return ref;
    } catch (e) {
      this.log(`checkpoint ${path}: unreadable header (${(e as Error).message})`);
      return null;
    }
  }

  load(ref: Omit<CheckpointRef, 'digest'>): Promise<StageCheckpoint | null> {
    return this.serial(async () => {
      const path = join(this.dir, runDir(ref.runId), fileName(ref.stage, ref.step));
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
      try {
        const ck = decodeStageCheckpoint(bytes);
        if (ck.runId !== ref.runId || ck.stage !== ref.stage || ck.step !== ref.step) {
          throw new Error(`it holds run ${ck.runId} stage ${ck.stage} step ${ck.step}`);
        }
        return ck;
      } catch (e) {
        this.log(`checkpoint ${path} is damaged, deleted: ${(e as Error).message}`);
        await this.remove(path);
        return null;
      }
    });
  }

  prune(keepRunId: string): Promise<void> {
    return this.serial(async () => {
      const keep = runDir(keepRunId);
      for (const run of await readdirOrEmpty(this.dir)) {
        if (run === keep) continue;
        const dir = join(this.dir, run);
        // Only our own files: a directory given by mistake (say, $HOME) loses nothing else.
        const files = await readdirOrEmpty(dir);
        for (const f of files) if (FILE.test(f) || TEMP.test(f)) await this.remove(join(dir, f));
        await rmdir(dir).catch(() => undefined); // not empty: something else lives there; leave it
      }
    });
  }

  /** Removes the whole directory (the demo's temporary stores). */
  async destroy(): Promise<void> {
    await this.serial(() => rm(this.dir, { recursive: true, force: true }));
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

/** fsync a directory (its rename durable); best effort where a platform cannot open directories. */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // e.g. Windows: directories cannot be opened; the rename is still atomic.
  }
}
