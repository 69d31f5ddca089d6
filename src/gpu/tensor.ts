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
