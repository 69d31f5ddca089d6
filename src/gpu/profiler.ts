// Per-kernel GPU time from timestamp queries: while a Runtime's `profiler` is set, every dispatch runs in its own
// compute pass whose beginning and end write timestamps; each submit resolves them and `collect()` reads them back
// and sums the time per kernel name. Needs the `timestamp-query` feature (acquireDevice({ timestamps: true })).
// Separate passes cost a little themselves, so a profiled step is slower than a plain one: read the shares.

const MAX_PASSES = 2048; // 4,096 queries: the WebGPU limit of one query set

export interface KernelTime {
  name: string;
  launches: number;
  ms: number;
}

export class KernelProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private names: string[] = [];
  /** Resolved batches waiting to be read: a readback buffer and the kernel names of its passes. */
  private pending: { buffer: GPUBuffer; names: string[] }[] = [];
  private readonly totals = new Map<string, { launches: number; ns: number }>();

  constructor(private readonly device: GPUDevice) {
    if (!device.features.has('timestamp-query')) throw new Error('profiler: the device has no timestamp-query (acquire it with timestamps: true)');
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * MAX_PASSES });
    this.resolveBuffer = device.createBuffer({ size: 16 * MAX_PASSES, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  }

  /** The timestamp writes of the next dispatch's pass, or undefined when this submit is full (then it runs untimed). */
  nextPass(name: string): GPUComputePassTimestampWrites | undefined {
    const i = this.names.length;
    if (i >= MAX_PASSES) return undefined;
    this.names.push(name);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Called by the Runtime before it finishes an encoder: resolves this submit's timestamps into a readback buffer. */
  resolve(encoder: GPUCommandEncoder): void {
    const n = this.names.length;
    if (n === 0) return;
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuffer, 0);
    const buffer = this.device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, buffer, 0, 16 * n);
    this.pending.push({ buffer, names: this.names });
    // Query indices restart with the next submit (queue order keeps the shared resolve buffer's uses apart).
    this.names = [];
  }

  /** Reads every resolved batch (after the work was submitted and finished) and returns the totals, slowest first. */
  async collect(): Promise<KernelTime[]> {
    for (const { buffer, names } of this.pending.splice(0)) {
      await buffer.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(buffer.getMappedRange().slice(0));
      buffer.unmap();
      buffer.destroy();
      names.forEach((name, i) => {
        const ns = Number(t[2 * i + 1] - t[2 * i]);
        const e = this.totals.get(name) ?? { launches: 0, ns: 0 };
        e.launches++;
        e.ns += Math.max(0, ns);
        this.totals.set(name, e);
      });
    }
    return [...this.totals].map(([name, e]) => ({ name, launches: e.launches, ms: e.ns / 1e6 })).sort((a, b) => b.ms - a.ms);
  }

  /** Forgets the totals so far (e.g. after warm-up steps). */
  reset(): void {
    this.totals.clear();
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuffer.destroy();
  }
}
