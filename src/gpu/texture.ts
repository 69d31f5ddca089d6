// A 2D rgba32float texture that a kernel reads with textureLoad (a `texture_2d<f32>` binding, kind 'texture'): a
// copy of a tensor's rows, 4 floats per texel. On llvmpipe (lavapipe) a texel fetch is a SIMD gather, while a storage
// buffer load whose address differs per invocation runs a loop over the lanes; so an operand every lane reads at its
// own address is cheaper to read from a texture (matmul's B, src/gpu/ops/matmul.ts). Made by Runtime.texture2d,
// filled by Runtime.copyToTexture.

export class Texture2D {
  constructor(
    readonly texture: GPUTexture,
    readonly view: GPUTextureView,
    /** Texels per row (= floats per row / 4). */
    readonly width: number,
    /** Rows. */
    readonly height: number,
    readonly label: string,
    /** The runtime's id for bind-group caching. */
    readonly id: number,
  ) {}
}

/** Bytes per texel row in a buffer -> texture copy must be a multiple of this (WebGPU). */
export const TEXTURE_ROW_ALIGN_BYTES = 256;

/** Whether rows of `floatsPerRow` floats can be copied into a texture as they lie in a buffer (rows 256-byte aligned). */
export function textureRowsFit(floatsPerRow: number): boolean {
  return floatsPerRow > 0 && (floatsPerRow * 4) % TEXTURE_ROW_ALIGN_BYTES === 0;
}
