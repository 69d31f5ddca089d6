// Child processes for the process-level tests (tests/cli, tests/swarm/frozen-peer) and the resilience benchmark
// (bench/resilience.ts): `node <args>` / `bin/tabswarm.mjs <args>` with its output kept, its exit awaited, and a wait
// for a condition on its output. Every process started here is SIGKILLed by killAll() if it is still running (the
// cleanup, whatever happened).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname ?? '.', '..', '..');

export interface Proc {
  cp: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<Proc>();

/** `node <args>` in the repository root; `netns`: inside the network namespace of that process (nsenter, tests/nat). */
export function nodeProc(args: string[], opts: { netns?: number } = {}): Proc {
  const [cmd, argv] =
    opts.netns === undefined ? [process.execPath, args] : ['nsenter', ['-t', String(opts.netns), '-n', '--', process.execPath, ...args]];
  const cp = spawn(cmd, argv, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  let out = '';
  let err = '';
  cp.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  cp.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const p: Proc = {
    cp,
    out: () => out,
    err: () => err,
    exited: new Promise((resolve) => cp.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  live.add(p);
  void p.exited.then(() => live.delete(p));
  return p;
}

/** `bin/tabswarm.mjs <args>`. */
export function tabswarm(args: string[], opts: { netns?: number } = {}): Proc {
  return nodeProc([join(ROOT, 'bin', 'tabswarm.mjs'), ...args], opts);
}

/** A `tabswarm peer` on `url`'s room; `extra`: --key / --checkpoint-dir / ... (default: an ephemeral key). */
export function peerProc(url: string, room: string, coordinator: string, extra: string[] = ['--key', 'ephemeral']): Proc {
  return tabswarm(['peer', '--signal', url, '--room', room, '--coordinator', coordinator, '--throughput', '1000', ...extra]);
}

/** The peer id a `tabswarm peer` announced ("[peer ID] joined room"). */
export function peerIdOf(p: Proc): string | undefined {
  return /\[peer ([0-9a-f]+)\] joined room/.exec(p.err())?.[1];
}

/**
 * Resolves with `cond()` once it is neither null nor undefined: checked whenever `p` writes and every 10 ms (a
 * condition on a file), and once more when `p` exits; rejects if `p` exits without it holding.
 */
export function until<T>(p: Proc, cond: () => T | null | undefined, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const check = (): boolean => {
      const v = cond();
      if (v === null || v === undefined) return false;
      cleanup();
      resolve(v);
      return true;
    };
    const timer = setInterval(check, 10);
    const cleanup = () => {
      clearInterval(timer);
      p.cp.stdout?.off('data', check);
      p.cp.stderr?.off('data', check);
    };
    p.cp.stdout?.on('data', check);
    p.cp.stderr?.on('data', check);
    void p.exited.then(({ code, signal }) => {
      if (check()) return;
      cleanup();
      reject(new Error(`${what}: the process exited (${code ?? signal}) first\n${p.err().slice(-2000)}`));
    });
    check();
  });
}

/** SIGKILLs every process started here that still runs (a stopped one is killed too) and waits for them. */
export async function killAll(): Promise<void> {
  const ps = [...live];
  for (const p of ps) if (p.cp.exitCode === null && p.cp.signalCode === null) p.cp.kill('SIGKILL');
  await Promise.all(ps.map((p) => p.exited));
}
