// Device acquisition: asks for the adapter's real limits (the defaults cap workgroup storage at 16 KiB and
// storage bindings at 128 MiB), reports what we got, and turns uncaptured errors into loud failures.

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A short name used as the autotuner's cache key, e.g. "llvmpipe" or "swiftshader". */
  key: string;
  features: string[];
  limits: {
    maxComputeWorkgroupStorageSize: number;
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
    minUniformBufferOffsetAlignment: number;
  };
}

export interface DeviceHandle {
  device: GPUDevice;
  adapter: GPUAdapter;
  report: AdapterReport;
  hasF16: boolean;
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Request shader-f16 when the adapter has it (off by default: f32 is the engine's default precision). */
  f16?: boolean;
  /** Request the `subgroups` feature when the adapter has it (default true). */
  subgroups?: boolean;
  /** Request `timestamp-query` when the adapter has it (the kernel profiler, src/gpu/profiler.ts; default false). */
  timestamps?: boolean;
}

export async function acquireDevice(gpu: GPU, opts: AcquireOptions = {}): Promise<DeviceHandle> {
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error('WebGPU: no adapter (is a Vulkan driver installed? in Chromium pass --enable-unsafe-webgpu)');
  const l = adapter.limits;
  const want = {
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
  };
  const features: GPUFeatureName[] = [];
  const hasF16 = !!opts.f16 && adapter.features.has('shader-f16');
  if (hasF16) features.push('shader-f16');
  // Subgroups let matmul lanes share loaded values (the fastest variants on CPU adapters); optional everywhere.
  if (opts.subgroups !== false && adapter.features.has('subgroups' as GPUFeatureName)) features.push('subgroups' as GPUFeatureName);
  if (opts.timestamps && adapter.features.has('timestamp-query')) features.push('timestamp-query');
  const device = await adapter.requestDevice({ requiredLimits: want, requiredFeatures: features });
  device.addEventListener('uncapturederror', (ev) => {
    // Every launch runs inside an error scope; anything reaching here escaped one. Never let it pass silently.
    const e = (ev as GPUUncapturedErrorEvent).error;
    console.error(`[gpu] uncaptured ${e.constructor.name}: ${e.message}`);
  });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.toLowerCase();
  const key =
    text.includes('llvmpipe') || text.includes('lavapipe')
      ? 'lavapipe'
      : text.includes('swiftshader')
        ? 'swiftshader'
        : (info.vendor || 'unknown').replace(/\W+/g, '_') + '_' + (info.architecture || 'gpu').replace(/\W+/g, '_');
  const report: AdapterReport = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    key,
    features: [...adapter.features].map(String).sort(),
    limits: {
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: device.limits.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
      minUniformBufferOffsetAlignment: device.limits.minUniformBufferOffsetAlignment,
    },
  };
  return { device, adapter, report, hasF16 };
}

export function describeAdapter(r: AdapterReport): string {
  const name = [r.vendor, r.architecture, r.device, r.description].filter(Boolean).join(' / ');
  return (
    `${name || 'unknown adapter'} [${r.key}] wg-storage ${r.limits.maxComputeWorkgroupStorageSize} B, ` +
    `storage binding ${(r.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, ` +
    `invocations ${r.limits.maxComputeInvocationsPerWorkgroup}; features: ${r.features.join(', ') || 'none'}`
  );
}
