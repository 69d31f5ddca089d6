// Node entry to the GPU: Dawn + the chosen Vulkan ICD, wrapped in a Runtime.
import { getPriority, setPriority } from 'node:os';
import { acquireDevice, describeAdapter, type AcquireOptions } from './device';
import { nodeGpu } from './node-gpu';
import { Runtime, type PollPriority } from './runtime';

/** `yieldCpu`: every wait without a hint polls at the lowest priority (Runtime.defaultWait; several in-process peers). */
export async function nodeRuntime(opts: AcquireOptions & { quiet?: boolean; yieldCpu?: boolean } = {}): Promise<Runtime> {
  const { gpu } = await nodeGpu({ quiet: opts.quiet });
  const handle = await acquireDevice(gpu, opts);
  if (!opts.quiet && process.env.TABSWARM_QUIET !== '1') process.stderr.write(`[gpu] ${describeAdapter(handle.report)}\n`);
  const rt = new Runtime(handle);
  rt.pollPriority = pollPriority();
  if (opts.yieldCpu) rt.defaultWait = { yieldCpu: true };
  return rt;
}

/**
 * Dawn's Node binding busy-polls the main thread while a GPU promise is pending; on a CPU adapter that thread competes
 * with the driver's worker threads for the cores. On Linux a thread's nice value is its own (the driver's threads keep
 * theirs), so the main thread polls at nice 19 and is restored after. Only where restoring is allowed (root): an
 * unprivileged thread may lower its priority but never raise it back.
 */
function pollPriority(): PollPriority | null {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return null;
  // One for the process (the main thread's priority): waits of several runtimes overlap; the first lowers, the last
  // restores.
  mainThread ??= mainThreadPriority();
  return mainThread;
}

let mainThread: PollPriority | undefined;

function mainThreadPriority(): PollPriority {
  let depth = 0;
  let before = 0;
  return {
    lower() {
      if (depth++ > 0) return;
      try {
        before = getPriority();
        setPriority(19);
      } catch {
        // leave it as it is
      }
    },
    restore() {
      if (--depth > 0) return;
      try {
        setPriority(before);
      } catch {
        // root can always restore; nothing to do otherwise
      }
    },
  };
}
