// Dawn's two limit warnings ("Warning: maxDynamic{Uniform,Storage}BuffersPerPipelineLayout artificially reduced from
// 1000000 to 16 to fit dynamic offset allocation limit.") are written by C++ (dawn::WarningLog, fprintf to stderr)
// when it first enumerates a Vulkan adapter whose limits exceed its own (lavapipe, RADV); dawn.node has no toggle
// for them. Enumeration is synchronous inside the first requestAdapter() call, so for that one call fd 2 is pointed
// at a temporary file, then put back, and every line it caught except exactly those warnings is written to stderr.
// Only where fd 2 can be reopened by path without side effects: a terminal, a pipe, a log file of its own. Not a
// file shared with stdout (`>log 2>&1`: one offset for both) nor a socket (a Node parent's 'pipe': it cannot be
// reopened): there the warnings stay, and a parent that reads them can drop them with isDawnLimitWarning().
import { closeSync, constants, fstatSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LIMIT_WARNING =
  /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

/** True for exactly Dawn's two limit-clamp warnings (one line each, no trailing newline). */
export function isDawnLimitWarning(line: string): boolean {
  return LIMIT_WARNING.test(line);
}

/** How fd 2 can be reopened by path, or null when it must be left alone. */
function reopenFlags(): number | null {
  try {
    fstatSync(0);
    fstatSync(1); // both open: closing fd 2 makes 2 the lowest free descriptor, the one open() returns
    const st = fstatSync(2);
    // O_NONBLOCK on a pipe: open() fails at once (ENXIO) instead of waiting when its reader is gone.
    if (st.isFIFO()) return constants.O_WRONLY | constants.O_NONBLOCK;
    // O_NOCTTY: a terminal reopened by a session leader must not become its controlling terminal.
    if (st.isCharacterDevice()) return constants.O_WRONLY | constants.O_NOCTTY;
    // A log file of its own (`2>peer.log`): reopened for appending, where the next write went anyway. Not when it is
    // stdout's file too (`>log 2>&1`): the two share one offset, a reopened stderr would write over stdout.
    const out = fstatSync(1);
    if (st.isFile() && !(out.dev === st.dev && out.ino === st.ino)) return constants.O_WRONLY | constants.O_APPEND;
    return null;
  } catch {
    return null;
  }
}

/**
 * Runs `fn` (its synchronous part) with native writes to fd 2 caught, then writes back every caught line that is not
 * one of Dawn's limit warnings. TABSWARM_DAWN_WARNINGS=1 turns this off.
 */
export function withoutDawnLimitWarnings<T>(fn: () => T): T {
  const flags = process.env.TABSWARM_DAWN_WARNINGS === '1' ? null : reopenFlags();
  if (flags === null) return fn();
  let saved: number;
  try {
    saved = openSync('/proc/self/fd/2', flags);
  } catch {
    return fn();
  }
  const restore = () => {
    closeSync(2);
    openSync(`/proc/self/fd/${saved}`, flags); // the lowest free descriptor again: 2
    closeSync(saved);
  };
  const catchPath = join(tmpdir(), `tabswarm-stderr-${process.pid}-${Date.now()}.log`);
  closeSync(2);
  let fd = -1;
  try {
    fd = openSync(catchPath, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  } catch {
    // no temporary file: put stderr back and let the warnings through
  }
  if (fd !== 2) {
    if (fd >= 0) closeSync(fd);
    openSync(`/proc/self/fd/${saved}`, flags);
    closeSync(saved);
    rmSync(catchPath, { force: true });
    return fn();
  }
  try {
    return fn();
  } finally {
    restore();
    let caught = '';
    try {
      caught = readFileSync(catchPath, 'utf8');
    } catch {
      // nothing caught
    }
    rmSync(catchPath, { force: true });
    const kept = caught.split('\n').filter((l, i, all) => !(i === all.length - 1 && l === '') && !isDawnLimitWarning(l));
    if (kept.length > 0) process.stderr.write(kept.join('\n') + '\n');
  }
}
