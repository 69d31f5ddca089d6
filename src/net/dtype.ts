// Tensor element types that cross the wire. The numeric codes are part of the frame header: never renumber them,
// only append.

export const DTYPES = ['f32', 'f16', 'i32', 'u32', 'i8', 'u8', 'bf16'] as const;
export type DType = (typeof DTYPES)[number];

const BYTES: Record<DType, number> = { f32: 4, f16: 2, i32: 4, u32: 4, i8: 1, u8: 1, bf16: 2 };

export function dtypeCode(dtype: DType): number {
  return DTYPES.indexOf(dtype);
}

export function dtypeFromCode(code: number): DType | undefined {
  return DTYPES[code];
}

export function bytesPerElement(dtype: DType): number {
  return BYTES[dtype];
}

/** Byte length a tensor of this dtype and shape must have; NaN when the shape is not a list of safe integers. */
export function expectedByteLength(dtype: DType, shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return Number.NaN;
    n *= d;
  }
  const bytes = n * BYTES[dtype];
  return Number.isSafeInteger(bytes) ? bytes : Number.NaN;
}
