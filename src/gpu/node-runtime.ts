// Node entry to the GPU: Dawn + the chosen Vulkan ICD, wrapped in a Runtime.
import { acquireDevice, describeAdapter, type AcquireOptions } from './device';
import { nodeGpu } from './node-gpu';
import { Runtime } from './runtime';

export async function nodeRuntime(opts: AcquireOptions & { quiet?: boolean } = {}): Promise<Runtime> {
  const { gpu } = await nodeGpu({ quiet: opts.quiet });
  const handle = await acquireDevice(gpu, opts);
  if (!opts.quiet && process.env.TABSWARM_QUIET !== '1') process.stderr.write(`[gpu] ${describeAdapter(handle.report)}\n`);
  return new Runtime(handle);
}
