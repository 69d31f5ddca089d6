// A tensor is a GPU storage buffer plus a shape. Element type is 32-bit (f32 by default; u32/i32 for token ids).
export type DType = 'f32' | 'u32' | 'i32';

export class Tensor {
  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly label: string,
    /** Byte offset into `buffer` (views into a flat parameter/gradient buffer; a multiple of 256). */
    readonly byteOffset = 0,
  ) {}

  get size(): number {
    return shapeSize(this.shape);
  }

  get bytes(): number {
    return this.size * 4;
  }

  toString(): string {
    return `${this.label}[${this.shape.join('x')}:${this.dtype}]`;
  }
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`bad shape [${shape.join(', ')}]: dims must be non-negative integers`);
    n *= d;
  }
  return n;
}

/** Throws a named error unless `t` has exactly `shape`. */
export function expectShape(op: string, what: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${op}: ${what} ${t.label} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
}

/** Throws unless `t` holds at least `n` elements (kernels may address a prefix of a larger buffer). */
export function expectSize(op: string, what: string, t: Tensor, n: number): void {
  if (t.size < n) throw new Error(`${op}: ${what} ${t.label} holds ${t.size} elements, needs ${n}`);
}

/**
 * WebGPU rejects a dispatch that binds one buffer both read-only and writable, or two writable bindings whose bound
 * ranges overlap. Catch it before launch, named after the op, instead of as an anonymous validation error at submit.
 * Ranges are the ones Runtime.launch binds: the tensor's bytes from its offset, rounded up to 16.
 */
export function expectNoAliasing(op: string, reads: readonly (readonly [string, Tensor])[], writes: readonly (readonly [string, Tensor])[]): void {
  const all = [...reads.map(([n, t]) => [n, t, false] as const), ...writes.map(([n, t]) => [n, t, true] as const)];
  const range = (t: Tensor): [number, number] => [t.byteOffset, t.byteOffset + Math.max(16, Math.ceil(t.bytes / 16) * 16)];
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const [na, a, wa] = all[i];
      const [nb, b, wb] = all[j];
      if (a.buffer !== b.buffer || (!wa && !wb)) continue;
      if (wa !== wb) throw new Error(`${op}: ${na} ${a.label} and ${nb} ${b.label} share a buffer (one is read, the other written)`);
      const [a0, a1] = range(a);
      const [b0, b1] = range(b);
      if (a0 < b1 && b0 < a1) throw new Error(`${op}: ${na} ${a.label} and ${nb} ${b.label} are written through overlapping bindings`);
    }
  }
}
