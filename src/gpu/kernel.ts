// A kernel is one WGSL entry point with a declared binding list. Binding i of group 0 is `bindings[i]`:
// 'uniform' (the launch's params, at most one, first), 'read' (read-only storage) or 'rw' (read_write storage).
// Kernels are defined once (module level or memoized per variant) so the runtime can cache their pipelines by id.

export type BindingKind = 'uniform' | 'read' | 'rw';

export interface Kernel {
  readonly id: number;
  readonly name: string;
  readonly code: string;
  readonly entry: string;
  readonly bindings: readonly BindingKind[];
  /** Pipeline-overridable constants (WGSL `override`). */
  readonly constants?: Readonly<Record<string, number>>;
}

let nextId = 1;

export function defineKernel(spec: Omit<Kernel, 'id'>): Kernel {
  const u = spec.bindings.indexOf('uniform');
  if (u > 0 || spec.bindings.lastIndexOf('uniform') !== u) {
    throw new Error(`kernel ${spec.name}: the uniform binding, if any, must be binding 0 and unique`);
  }
  return Object.freeze({ ...spec, id: nextId++ });
}

/** Packs a params struct: each entry is [type, value], laid out as consecutive 4-byte scalars (WGSL struct of u32/i32/f32). */
export function packParams(fields: readonly (readonly ['u32' | 'i32' | 'f32', number])[]): ArrayBuffer {
  const bytes = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const dv = new DataView(buf);
  fields.forEach(([t, v], i) => {
    if (t === 'f32') dv.setFloat32(i * 4, v, true);
    else if (t === 'u32') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`packParams: field ${i} (${v}) is not a u32`);
      dv.setUint32(i * 4, v, true);
    } else dv.setInt32(i * 4, v, true);
  });
  return buf;
}

/** Number of workgroups needed to cover n items with groups of size g. */
export function groups(n: number, g: number): number {
  return Math.ceil(n / g);
}
