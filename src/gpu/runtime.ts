// The one place kernels are launched. Launches are recorded into a single command encoder and submitted on
// flush() (or before any host read/write, so queue writes never overtake recorded work). Every device call that
// can fail (buffer, pipeline, bind group) runs inside validation + out-of-memory error scopes named after the op;
// flush() awaits them and throws the first error with that name, so a bad launch is never silent zeros.
import type { DeviceHandle } from './device';
import { groups, type Kernel } from './kernel';
import type { KernelProfiler } from './profiler';
import { shapeSize, Tensor, type DType } from './tensor';
import { Texture2D, textureRowsFit } from './texture';

/** The buffers for a kernel's storage bindings, in binding order, from a record keyed by binding name. */
/** What a binding may be given: a tensor (or raw buffer) for storage bindings, a texture for 'texture' ones. */
export type Bindable = Tensor | GPUBuffer | Texture2D;

function byBindingName(k: Kernel, names: readonly string[], named: Readonly<Record<string, Bindable>>): Bindable[] {
  const extra = Object.keys(named).filter((n) => !names.includes(n));
  if (extra.length > 0) throw new Error(`${k.name}: no binding named ${extra.join(', ')} (binds ${names.join(', ')})`);
  return names.map((n) => {
    const b = named[n];
    if (!b) throw new Error(`${k.name}: binding ${n} not given`);
    return b;
  });
}

const USAGE_STORAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST (numeric: works before globals exist)
const USAGE_UNIFORM = 0x40 | 0x08; // UNIFORM | COPY_DST
const USAGE_READBACK = 0x01 | 0x08; // MAP_READ | COPY_DST
const TEXTURE_USAGE = 0x02 | 0x04; // COPY_DST | TEXTURE_BINDING
const MAP_READ = 0x01;
const RING_BYTES = 1 << 20;
const STAGING_KEEP = 4;
const STAGING_MAX_BYTES = 16 << 20;

/** How long the caller expects the submitted work to take, and whether to poll for it at a low priority (see flush). */
export interface WaitHint {
  sleepMs?: number;
  /** Poll at the lowest thread priority (where the runtime can: Runtime.pollPriority), restored after. */
  yieldCpu?: boolean;
}

/** Lowers and restores the calling thread's scheduling priority around a GPU wait (Node on Linux: node-runtime.ts). */
export interface PollPriority {
  lower(): void;
  restore(): void;
}

interface PendingError {
  op: string;
  promise: Promise<GPUError | null>;
}

export interface RuntimeStats {
  launches: number;
  submits: number;
  pipelines: number;
  /** Storage buffers created (tensors; pooled ones are reused, never freed): the runtime's tensor memory. */
  bytesAllocated: number;
  /** The uniform ring's buffers (kernel parameters), apart: the runtime's, not any model's. */
  uniformBytes: number;
  /**
   * Textures created (rgba32float; matmul's texture variants cache one per B shape): tuned CPU-adapter choices only,
   * outside stage-memory.ts's budgets.
   */
  textureBytes: number;
  /** Milliseconds spent waiting for the GPU (flushes and readbacks, sleeps included): host time is the rest. */
  waitMs: number;
}

export class Runtime {
  readonly device: GPUDevice;
  readonly handle: DeviceHandle;
  readonly stats: RuntimeStats = { launches: 0, submits: 0, pipelines: 0, bytesAllocated: 0, uniformBytes: 0, textureBytes: 0, waitMs: 0 };

  private pipelines = new Map<number, GPUComputePipeline>();
  private layouts = new Map<number, GPUBindGroupLayout>();
  private bindGroups = new Map<string, GPUBindGroup>();
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private pool = new Map<number, GPUBuffer[]>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private errors: PendingError[] = [];
  private ring: GPUBuffer[] = [];
  private ringStaging: Uint8Array[] = [];
  private ringUsed: number[] = [];
  private ringIndex = 0;
  private readonly align: number;
  /**
   * The most bytes one storage binding may hold: the adapter's maxStorageBufferBindingSize. Ops over flat buffers
   * that may be larger split their launches into views of at most this (src/gpu/chunks.ts); tests lower it to
   * exercise those splits at small sizes.
   */
  maxBindingBytes: number;
  /** Set where the main thread's priority can be lowered and restored (node-runtime.ts); null: polls as it is. */
  pollPriority: PollPriority | null = null;
  /**
   * The wait of a flush or read that gives no hint (default: none, spin as Dawn does). In-process swarm peers on a
   * CPU adapter poll at low priority so the spinning pollers of several devices leave the cores to the driver.
   */
  defaultWait: WaitHint | undefined = undefined;
  /** When set, every dispatch runs in its own timed compute pass (src/gpu/profiler.ts). */
  profiler: KernelProfiler | null = null;

  constructor(handle: DeviceHandle) {
    this.handle = handle;
    this.device = handle.device;
    this.align = handle.report.limits.minUniformBufferOffsetAlignment;
    this.maxBindingBytes = handle.report.limits.maxStorageBufferBindingSize;
  }

  // ---------------------------------------------------------------- errors

  /** Runs a device call inside validation + OOM scopes; failures surface at the next flush, named `op`. */
  guarded<T>(op: string, fn: () => T): T {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    try {
      return fn();
    } finally {
      this.errors.push({ op, promise: this.device.popErrorScope() });
      this.errors.push({ op, promise: this.device.popErrorScope() });
    }
  }

  private async checkErrors(): Promise<void> {
    if (this.errors.length === 0) return;
    const pending = this.errors;
    this.errors = [];
    const results = await Promise.all(pending.map((p) => p.promise));
    for (let i = 0; i < results.length; i++) {
      const e = results[i];
      if (e) {
        const kind = e.constructor?.name?.includes('OutOfMemory') ? 'out-of-memory' : 'validation';
        throw new Error(`GPU ${kind} error in ${pending[i].op}: ${e.message}`);
      }
    }
  }

  // ---------------------------------------------------------------- buffers

  /** A new (or pooled) tensor. Contents are undefined: callers fill it or poison it. */
  tensor(shape: readonly number[], label: string, dtype: DType = 'f32'): Tensor {
    const bytes = Math.max(16, Math.ceil((shapeSize(shape) * 4) / 16) * 16);
    // A buffer may be larger than one binding (a flat parameter store: its ops bind it in views, src/gpu/chunks.ts);
    // launch() refuses a binding over maxBindingBytes by name.
    const limit = this.handle.report.limits.maxBufferSize;
    if (bytes > limit) {
      throw new Error(`tensor ${label} [${shape.join('x')}] needs ${bytes} B, over this adapter's buffer size limit ${limit} B`);
    }
    const free = this.pool.get(bytes);
    const buffer = free?.pop() ?? this.createBuffer(bytes, USAGE_STORAGE, label);
    return new Tensor(buffer, [...shape], dtype, label);
  }

  /** A tensor initialised from host data. */
  upload(data: Float32Array | Uint32Array | Int32Array, shape: readonly number[], label: string): Tensor {
    const n = shapeSize(shape);
    if (data.length !== n) throw new Error(`upload ${label}: ${data.length} values for shape [${shape.join(', ')}] (${n})`);
    const dtype: DType = data instanceof Float32Array ? 'f32' : data instanceof Uint32Array ? 'u32' : 'i32';
    const t = this.tensor(shape, label, dtype);
    this.write(t, data);
    return t;
  }

  /**
   * A view of `count = size(shape)` elements of `parent` starting at `elementOffset`. Kernels see the view as a
   * whole buffer (bound with an offset), so the offset must be a multiple of the storage offset alignment.
   */
  view(parent: Tensor, elementOffset: number, shape: readonly number[], label: string): Tensor {
    const byteOffset = parent.byteOffset + elementOffset * 4;
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    if (byteOffset % align !== 0) throw new Error(`view ${label}: byte offset ${byteOffset} is not a multiple of ${align}`);
    if (elementOffset + shapeSize(shape) > parent.size)
      throw new Error(`view ${label}: [${shape.join('x')}] at ${elementOffset} overflows ${parent}`);
    return new Tensor(parent.buffer, [...shape], parent.dtype, label, byteOffset);
  }

  /** Element alignment for views (storage offset alignment / 4). */
  get viewAlignment(): number {
    return this.device.limits.minStorageBufferOffsetAlignment / 4;
  }

  /** Returns a tensor's buffer to the pool. The tensor must not be used afterwards. */
  release(t: Tensor): void {
    if (t.byteOffset !== 0) throw new Error(`release ${t.label}: cannot release a view`);
    const list = this.pool.get(t.buffer.size) ?? [];
    list.push(t.buffer);
    this.pool.set(t.buffer.size, list);
  }

  private createBuffer(bytes: number, usage: number, label: string): GPUBuffer {
    const b = this.guarded(`allocate ${label} (${bytes} B)`, () => this.device.createBuffer({ size: bytes, usage, label }));
    this.bufferIds.set(b, this.nextBufferId++);
    if (usage === USAGE_UNIFORM) this.stats.uniformBytes += bytes;
    else this.stats.bytesAllocated += bytes;
    return b;
  }

  /** Host -> GPU. Submits recorded work first so this write cannot overtake it. */
  write(t: Tensor, data: Float32Array | Uint32Array | Int32Array, elementOffset = 0): void {
    if (elementOffset + data.length > t.size) {
      throw new Error(`write ${t.label}: ${data.length} values at ${elementOffset} overflow ${t.size} elements`);
    }
    this.submit();
    this.device.queue.writeBuffer(t.buffer, t.byteOffset + elementOffset * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Fills with one value (NaN poisoning in tests, zeroing gradients). */
  fill(t: Tensor, value: number): void {
    if (value === 0) {
      this.endPass();
      this.ensureEncoder().clearBuffer(t.buffer, t.byteOffset, t.byteOffset === 0 ? t.buffer.size : t.bytes);
      return;
    }
    const data = t.dtype === 'f32' ? new Float32Array(t.size).fill(value) : new Uint32Array(t.size).fill(value);
    this.write(t, data);
  }

  /** GPU -> GPU copy of `count` elements, recorded in order with launches. */
  copy(src: Tensor, dst: Tensor, count = src.size, srcOffset = 0, dstOffset = 0): void {
    if (srcOffset + count > src.size || dstOffset + count > dst.size) {
      throw new Error(`copy ${src.label} -> ${dst.label}: ${count} elements out of range`);
    }
    this.endPass();
    this.ensureEncoder().copyBufferToBuffer(src.buffer, src.byteOffset + srcOffset * 4, dst.buffer, dst.byteOffset + dstOffset * 4, count * 4);
  }

  /** A 2D rgba32float texture of `width` texels (4 floats each) by `height` rows, for 'texture' bindings. */
  texture2d(width: number, height: number, label: string): Texture2D {
    const max = this.device.limits.maxTextureDimension2D;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1 && width <= max && height <= max)) {
      throw new Error(`texture ${label}: ${width} x ${height} texels is not a 2D size this device allows (1..${max})`);
    }
    const texture = this.guarded(`allocate texture ${label}`, () =>
      this.device.createTexture({ size: [width, height], format: 'rgba32float', usage: TEXTURE_USAGE, label }),
    );
    this.stats.textureBytes += width * height * 16;
    return new Texture2D(texture, texture.createView(), width, height, label, this.nextBufferId++);
  }

  /** GPU -> GPU copy of `src`'s first width*4 x height floats (row-major, rows of width*4) into `dst`, recorded in
   *  order with launches. Rows must be a multiple of 256 bytes (textureRowsFit). */
  copyToTexture(src: Tensor, dst: Texture2D): void {
    const rowFloats = dst.width * 4;
    if (!textureRowsFit(rowFloats)) throw new Error(`copy ${src.label} -> ${dst.label}: rows of ${rowFloats} floats are not 256-byte aligned`);
    if (rowFloats * dst.height > src.size)
      throw new Error(`copy ${src.label} -> ${dst.label}: ${src.size} elements, the texture holds ${rowFloats * dst.height}`);
    this.endPass();
    this.ensureEncoder().copyBufferToTexture(
      { buffer: src.buffer, offset: src.byteOffset, bytesPerRow: rowFloats * 4, rowsPerImage: dst.height },
      { texture: dst.texture },
      [dst.width, dst.height],
    );
  }

  /** GPU -> host. Flushes, then maps a staging buffer. */
  async read(t: Tensor, count = t.size, wait?: WaitHint): Promise<Float32Array> {
    const raw = await this.readBytes(t, count, wait);
    return new Float32Array(raw);
  }

  async readU32(t: Tensor, count = t.size): Promise<Uint32Array> {
    return new Uint32Array(await this.readBytes(t, count));
  }

  /** GPU -> host of elements [offset, offset + count) only. */
  async readRange(t: Tensor, offset: number, count: number): Promise<Float32Array> {
    if (!(Number.isInteger(offset) && Number.isInteger(count) && offset >= 0 && count >= 0 && offset + count <= t.size)) {
      throw new Error(`read ${t.label}: elements [${offset}, ${offset + count}) out of its ${t.size}`);
    }
    return new Float32Array(await this.readBytes(t, count, undefined, offset));
  }

  private readBytes(t: Tensor, count: number, wait?: WaitHint, offset = 0): Promise<ArrayBuffer> {
    return this.mapped(t, count, offset, wait, (range) => range.slice(0));
  }

  /**
   * GPU -> `use(values)` without a host copy: `use` sees the first `count` values of `t` in the mapped readback
   * buffer and must not keep them (the buffer is unmapped and reused when it returns). For a reduction of a large
   * tensor (a digest of the parameters) the copy would cost more than the reduction: a fresh host buffer of some MB
   * is page-faulted in as it is written (measured: 5 ms for 1.6 MB on a CPU adapter's host).
   */
  async readWith<R>(t: Tensor, count: number, use: (values: Float32Array) => R): Promise<R> {
    if (!(Number.isInteger(count) && count >= 0 && count <= t.size)) throw new Error(`read ${t.label}: ${count} elements out of its ${t.size}`);
    return this.mapped(t, count, 0, undefined, (range) => use(new Float32Array(range)));
  }

  private async mapped<R>(t: Tensor, count: number, offset: number, wait: WaitHint | undefined, use: (range: ArrayBuffer) => R): Promise<R> {
    const bytes = count * 4;
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const staging = this.takeStaging(size, t.label);
    this.endPass();
    this.ensureEncoder().copyBufferToBuffer(t.buffer, t.byteOffset + offset * 4, staging, 0, bytes);
    let done = false;
    try {
      await this.flush(wait);
      const t0 = performance.now();
      await staging.mapAsync(MAP_READ);
      this.stats.waitMs += performance.now() - t0;
      let out: R;
      try {
        out = use(staging.getMappedRange(0, bytes));
      } finally {
        staging.unmap();
      }
      done = true;
      return out;
    } finally {
      if (done) this.giveStaging(size, staging);
      else staging.destroy(); // a failed read may leave it mapped or pending
    }
  }

  /**
   * Readback buffers are reused by size: a fresh one per read costs a CPU adapter an allocation and page faults
   * (in-process swarm peers read every boundary tensor). At most STAGING_KEEP per size, each at most STAGING_MAX_BYTES
   * (a large model's whole-parameter read is not kept).
   */
  private staging = new Map<number, GPUBuffer[]>();

  private takeStaging(size: number, label: string): GPUBuffer {
    const kept = this.staging.get(size)?.pop();
    if (kept) return kept;
    return this.guarded(`readback ${label}`, () => this.device.createBuffer({ size, usage: USAGE_READBACK }));
  }

  private giveStaging(size: number, b: GPUBuffer): void {
    const list = this.staging.get(size) ?? [];
    if (size > STAGING_MAX_BYTES || list.length >= STAGING_KEEP) {
      b.destroy();
      return;
    }
    list.push(b);
    this.staging.set(size, list);
  }

  // ---------------------------------------------------------------- launches

  private pipeline(k: Kernel): GPUComputePipeline {
    let p = this.pipelines.get(k.id);
    if (!p) {
      const layout = this.guarded(`layout ${k.name}`, () =>
        this.device.createBindGroupLayout({
          label: k.name,
          entries: k.bindings.map((kind, binding) => ({
            binding,
            visibility: 0x4, // COMPUTE
            ...(kind === 'texture'
              ? { texture: { sampleType: 'unfilterable-float' as const } }
              : {
                  buffer: {
                    type: kind === 'uniform' ? ('uniform' as const) : kind === 'read' ? ('read-only-storage' as const) : ('storage' as const),
                  },
                }),
          })),
        }),
      );
      this.layouts.set(k.id, layout);
      p = this.guarded(`compile ${k.name}`, () => {
        const module = this.device.createShaderModule({ code: k.code, label: k.name });
        return this.device.createComputePipeline({
          label: k.name,
          layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
          compute: { module, entryPoint: k.entry },
        });
      });
      this.pipelines.set(k.id, p);
      this.stats.pipelines++;
    }
    return p;
  }

  /** Compiles a kernel now (autotuning and warm-up), reporting any compile error immediately. */
  async prepare(k: Kernel): Promise<void> {
    this.pipeline(k);
    await this.checkErrors();
  }

  private uniformSlot(params: ArrayBuffer): { buffer: GPUBuffer; offset: number } {
    const size = params.byteLength;
    const i = this.ringIndex;
    if (i >= this.ring.length) {
      this.ring.push(this.createBuffer(RING_BYTES, USAGE_UNIFORM, `uniform ring ${i}`));
      this.ringStaging.push(new Uint8Array(RING_BYTES));
      this.ringUsed.push(0);
    }
    const off = Math.ceil(this.ringUsed[i] / this.align) * this.align;
    if (off + size > RING_BYTES) {
      this.ringIndex = i + 1;
      return this.uniformSlot(params);
    }
    this.ringStaging[i].set(new Uint8Array(params), off);
    this.ringUsed[i] = off + size;
    return { buffer: this.ring[i], offset: off };
  }

  /**
   * Records one dispatch. `named` gives the kernel's storage bindings by the names its WGSL declares them with
   * (every one, nothing else); `params` fills its uniform. `workgroups` are counts per dimension (each at most the
   * adapter's per-dimension limit).
   */
  launch(k: Kernel, named: Readonly<Record<string, Bindable>>, workgroups: readonly number[], params?: ArrayBuffer): void {
    const hasUniform = k.bindings[0] === 'uniform';
    const names = k.bindingNames.slice(hasUniform ? 1 : 0);
    const buffers = byBindingName(k, names, named);
    if (hasUniform !== (params !== undefined)) throw new Error(`${k.name}: params ${hasUniform ? 'missing' : 'not expected'}`);
    const [x, y = 1, z = 1] = workgroups;
    const maxDim = this.handle.report.limits.maxComputeWorkgroupsPerDimension;
    for (const d of [x, y, z]) {
      if (!Number.isInteger(d) || d < 0 || d > maxDim) throw new Error(`${k.name}: workgroup count ${d} outside 0..${maxDim}`);
    }
    if (x * y * z === 0) return;
    const pipeline = this.pipeline(k);
    const entries: GPUBindGroupEntry[] = [];
    let key = `${k.id}`;
    if (hasUniform) {
      const slot = this.uniformSlot(params!);
      entries.push({ binding: 0, resource: { buffer: slot.buffer, offset: slot.offset, size: params!.byteLength } });
      key += `:u${this.bufferIds.get(slot.buffer)}@${slot.offset}/${params!.byteLength}`;
    }
    buffers.forEach((b, i) => {
      const binding = i + (hasUniform ? 1 : 0);
      if ((k.bindings[binding] === 'texture') !== b instanceof Texture2D) {
        throw new Error(`${k.name}: binding ${names[i]} takes ${k.bindings[binding] === 'texture' ? 'a texture' : 'a buffer'}`);
      }
      if (b instanceof Texture2D) {
        entries.push({ binding, resource: b.view });
        key += `:t${b.id}`;
      } else if (b instanceof Tensor) {
        // Bind exactly the tensor's range (rounded up to 16 bytes for vec4 access, within the buffer): two views
        // of one flat buffer written by one dispatch must not overlap, including a view at offset 0.
        const size = Math.min(Math.max(16, Math.ceil(b.bytes / 16) * 16), b.buffer.size - b.byteOffset);
        if (size > this.maxBindingBytes)
          throw new Error(`${k.name}: binding ${names[i]} (${b.label}) is ${size} B, over the storage binding limit ${this.maxBindingBytes} B`);
        const resource = { buffer: b.buffer, offset: b.byteOffset, size };
        entries.push({ binding, resource });
        key += `:${this.bufferIds.get(b.buffer) ?? 'x'}@${b.byteOffset}`;
      } else {
        entries.push({ binding, resource: { buffer: b } });
        key += `:${this.bufferIds.get(b) ?? 'x'}`;
      }
    });
    let bg = this.bindGroups.get(key);
    if (!bg) {
      const layout = this.layouts.get(k.id)!;
      bg = this.guarded(`bind ${k.name}`, () => this.device.createBindGroup({ layout, entries, label: k.name }));
      if (!key.includes(':x')) this.bindGroups.set(key, bg);
    }
    const timed = this.profiler?.nextPass(k.name);
    if (timed) this.endPass();
    const pass = timed ? (this.pass = this.ensureEncoder().beginComputePass({ timestampWrites: timed })) : this.ensurePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(x, y, z);
    if (timed) this.endPass();
    this.stats.launches++;
  }

  /** Workgroup counts for n items in groups of g, folded into y when x would exceed the limit. */
  grid1d(n: number, g: number): [number, number] {
    const total = groups(n, g);
    const maxDim = this.handle.report.limits.maxComputeWorkgroupsPerDimension;
    if (total <= maxDim) return [total, 1];
    const y = Math.ceil(total / maxDim);
    return [Math.ceil(total / y), y];
  }

  private ensureEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private ensurePass(): GPUComputePassEncoder {
    this.pass ??= this.ensureEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Submits recorded work without waiting for it. */
  submit(): void {
    this.endPass();
    if (this.encoder) this.profiler?.resolve(this.encoder);
    const enc = this.encoder;
    // Uniforms recorded since the last submit go first: queue writes land before the commands that read them.
    for (let i = 0; i <= this.ringIndex && i < this.ring.length; i++) {
      if (this.ringUsed[i] > 0) {
        this.device.queue.writeBuffer(this.ring[i], 0, this.ringStaging[i].buffer, 0, Math.ceil(this.ringUsed[i] / 4) * 4);
        this.ringUsed[i] = 0;
      }
    }
    this.ringIndex = 0;
    if (!enc) return;
    this.encoder = null;
    this.guarded('submit', () => this.device.queue.submit([enc.finish()]));
    this.stats.submits++;
  }

  /** Submits and waits for the GPU; throws the first GPU error recorded since the last flush. */
  async flush(wait: WaitHint | undefined = this.defaultWait): Promise<void> {
    this.submit();
    const t0 = performance.now();
    // Dawn's Node binding polls while a GPU promise is pending: through a 1 ms timer (src/gpu/dawn-poll.ts), or by
    // spinning the main thread with TABSWARM_DAWN_POLL_MS=0, which takes a core from a CPU adapter's worker threads.
    // A caller that knows roughly how long the work takes sleeps first.
    if (wait?.sleepMs && wait.sleepMs > 1) await new Promise((r) => setTimeout(r, wait.sleepMs));
    // The spinning poller at the lowest priority leaves the cores to the driver's threads (a 200 ms train step of a
    // CPU adapter took 172 ms so, side by side).
    const low = wait?.yieldCpu ? this.pollPriority : null;
    low?.lower();
    try {
      await this.device.queue.onSubmittedWorkDone();
    } finally {
      low?.restore();
    }
    this.stats.waitMs += performance.now() - t0;
    await this.checkErrors();
  }

  destroy(): void {
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    for (const list of this.staging.values()) for (const b of list) b.destroy();
    this.staging.clear();
    for (const b of this.ring) b.destroy();
    this.pool.clear();
    this.bindGroups.clear();
    this.device.destroy();
  }
}
