// CPU time of this process by thread, from /proc (Linux): the main thread (JS, Dawn's polling, WebRTC sends) apart
// from every other (the GPU driver's workers on a CPU adapter, libdatachannel, libuv's pool). Elsewhere: null.
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadCpu {
  mainMs: number;
  otherMs: number;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

export function threadCpu(): ThreadCpu | null {
  if (process.platform !== 'linux') return null;
  let mainMs = 0;
  let otherMs = 0;
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  for (const tid of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    // Fields after the command name (which may hold spaces): state is field 3; utime and stime are 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (Number(f[11]) + Number(f[12])) * TICK_MS;
    if (!Number.isFinite(ms)) continue;
    if (Number(tid) === process.pid) mainMs += ms;
    else otherMs += ms;
  }
  return { mainMs, otherMs };
}

/** b - a per step (null when either is null). Threads that ended between a and b take their time with them. */
export function cpuPerStep(a: ThreadCpu | null, b: ThreadCpu | null, steps: number): ThreadCpu | null {
  if (!a || !b || steps <= 0) return null;
  return { mainMs: (b.mainMs - a.mainMs) / steps, otherMs: Math.max(0, b.otherMs - a.otherMs) / steps };
}

/** CPU ms of this process so far, every thread together (those that ended too). */
export function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
