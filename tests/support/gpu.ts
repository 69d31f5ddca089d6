// Shared helpers for GPU tests: one Runtime per test process and NaN poisoning. Seeded random data
// (./random) and comparisons (./close) need no GPU; they are re-exported here for the GPU suites' one import.
import { nodeRuntime } from '../../src/gpu/node-runtime';
import type { Runtime } from '../../src/gpu/runtime';
import type { Tensor } from '../../src/gpu/tensor';
import { hasShaderF16 } from '../../src/gpu/ops/matmul-f16';

export { expectClose, toF64, type CloseReport } from './close';
export { freshSeed, randInt, randn, rng, testSeed } from './random';

let rtPromise: Promise<Runtime> | undefined;
export function gpuRuntime(): Promise<Runtime> {
  rtPromise ??= nodeRuntime({ quiet: true });
  return rtPromise;
}

let f16Promise: Promise<Runtime> | undefined;
/** A second Runtime whose device requested 'shader-f16' (granted where the adapter has it: check
 *  `rt.handle.hasF16`). Separate from gpuRuntime() so the shared device keeps its plain feature set. */
export function gpuRuntimeF16(): Promise<Runtime> {
  f16Promise ??= nodeRuntime({ quiet: true, f16: true });
  return f16Promise;
}

/** gpuRuntimeF16(), or null (the test skipped, saying why) when the adapter has no shader-f16. */
export async function f16Runtime(skip: (note: string) => void): Promise<Runtime | null> {
  const rt = await gpuRuntimeF16();
  if (!hasShaderF16(rt)) {
    skip(`adapter ${rt.handle.report.key} does not offer shader-f16 (features: ${rt.handle.report.features.join(', ')})`);
    return null;
  }
  return rt;
}

/** Writes NaN into every element so a kernel that skips an output cannot pass. */
export function poison(rt: Runtime, ...ts: Tensor[]): void {
  for (const t of ts) rt.fill(t, Number.NaN);
}

/** Runs `fn` with the runtime's storage binding limit lowered to `bytes` (ops then split their launches, as they
 *  would over buffers past a real adapter's limit), restoring it after: gpuRuntime() is shared by a test file. */
export async function withBindingLimit<T>(rt: Runtime, bytes: number, fn: () => T | Promise<T>): Promise<T> {
  const was = rt.maxBindingBytes;
  rt.maxBindingBytes = bytes;
  try {
    return await fn();
  } finally {
    rt.maxBindingBytes = was;
  }
}
