// Browser entry to the GPU (page or Worker): navigator.gpu wrapped in a Runtime.
import { acquireDevice, type AcquireOptions } from './device';
import { Runtime } from './runtime';

export async function browserRuntime(opts: AcquireOptions = {}): Promise<Runtime> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new Error('WebGPU is not available here (needs a secure context and, in Chromium on CPU, --enable-unsafe-webgpu)');
  return new Runtime(await acquireDevice(gpu, opts));
}
