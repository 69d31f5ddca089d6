// Node GPU bootstrap: picks a Vulkan ICD, then starts Dawn (the `webgpu` npm package).
// Order: the user's VK_ICD_FILENAMES, else Mesa 25 lavapipe unpacked by scripts/setup.sh, else Chromium's
// SwiftShader. The Vulkan loader reads the variable when Dawn creates its instance, so it must be set before
// `create()` in this process (a worker thread would see a copy of the environment: use processes).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { throttleDawnPolling } from './dawn-poll';
import { withoutDawnLimitWarnings } from './native-stderr';

export interface NodeGpu {
  gpu: GPU;
  /** Which ICD the process got, and why. */
  icd: { path: string; source: 'user' | 'lavapipe' | 'swiftshader' };
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LAVAPIPE_ICD = join(repoRoot, '.cache', 'lavapipe', 'lvp_icd.json');
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let cached: Promise<NodeGpu> | undefined;

export function chooseIcd(env: NodeJS.ProcessEnv = process.env): NodeGpu['icd'] {
  const user = env.VK_ICD_FILENAMES;
  if (user) return { path: user, source: 'user' };
  if (existsSync(LAVAPIPE_ICD)) return { path: LAVAPIPE_ICD, source: 'lavapipe' };
  if (existsSync(SWIFTSHADER_ICD)) return { path: SWIFTSHADER_ICD, source: 'swiftshader' };
  throw new Error(
    'no Vulkan driver found: run `bash scripts/setup.sh` (installs Mesa lavapipe and Chromium), ' + 'or set VK_ICD_FILENAMES to an ICD json',
  );
}

/** Starts Dawn once per process. */
export function nodeGpu(opts: { quiet?: boolean } = {}): Promise<NodeGpu> {
  cached ??= (async () => {
    const icd = chooseIcd();
    process.env.VK_ICD_FILENAMES = icd.path;
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    const { create, globals } = await import('webgpu');
    // Dawn polls pending GPU promises by spinning setImmediate: a 1 ms timer instead (src/gpu/dawn-poll.ts).
    // TABSWARM_DAWN_POLL_MS=0 keeps the binding's own spinning.
    const pollMs = Number(process.env.TABSWARM_DAWN_POLL_MS ?? 1);
    if (Number.isFinite(pollMs) && pollMs > 0) throttleDawnPolling(pollMs);
    Object.assign(globalThis, globals);
    const gpu = create([]) as GPU;
    // Dawn enumerates adapters once per instance, synchronously in the first requestAdapter() call, and prints its
    // limit warnings there (src/gpu/native-stderr.ts): make that first call here, with those two lines filtered.
    await withoutDawnLimitWarnings(() => gpu.requestAdapter({ powerPreference: 'high-performance' }));
    if (!opts.quiet && process.env.TABSWARM_QUIET !== '1') {
      process.stderr.write(`[gpu] Vulkan ICD: ${icd.source} (${icd.path})\n`);
    }
    return { gpu, icd };
  })();
  return cached;
}
