// A kernel is one WGSL entry point of one specialised source. Its bindings are read from that source (the group-0
// variables the entry point uses, see src/gpu/wgsl.ts): binding i is `bindings[i]`, 'uniform' (the launch's params,
// at most one, first), 'read' (read-only storage) or 'rw' (read_write storage), named `bindingNames[i]`.
// Kernels are made once per variant (`kernelVariants` memoizes them) so the runtime caches one pipeline per variant.
import { entryBindings, specialise, type BindingKind, type Defines } from './wgsl';

export type { BindingKind };

export interface Kernel {
  readonly id: number;
  readonly name: string;
  /** The specialised WGSL the pipeline compiles. */
  readonly code: string;
  readonly entry: string;
  readonly bindings: readonly BindingKind[];
  readonly bindingNames: readonly string[];
}

let nextId = 1;

/** A kernel from finished WGSL (no template directives left). */
export function defineKernel(spec: { name: string; code: string; entry: string }): Kernel {
  const decls = entryBindings(spec.code, spec.entry, `kernel ${spec.name}`);
  const bindings = decls.map((d) => d.kind);
  const u = bindings.indexOf('uniform');
  if (u > 0 || bindings.lastIndexOf('uniform') !== u) {
    throw new Error(`kernel ${spec.name}: the uniform binding, if any, must be binding 0 and unique`);
  }
  return Object.freeze({ ...spec, id: nextId++, bindings, bindingNames: decls.map((d) => d.name) });
}

/** How one kernel family is specialised: V is its typed variant descriptor (width, flags, thread counts...). */
export interface KernelTemplate<V> {
  /** Label for pipelines and errors. */
  name: (v: V) => string;
  entry: string;
  /** A template (specialised with `defines(v)`) or a generator of the finished source (matmul's register blocks). */
  source: string | ((v: V) => string);
  defines?: (v: V) => Defines;
}

function stableKey(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${k}:${stableKey(o[k])}`)
    .join(',')}}`;
}

/** A kernel per variant, made on first use and kept: one specialised source and one pipeline per variant. */
export function kernelVariants<V>(t: KernelTemplate<V>): (v: V) => Kernel {
  const made = new Map<string, Kernel>();
  return (v: V) => {
    const key = stableKey(v);
    let k = made.get(key);
    if (!k) {
      const name = t.name(v);
      const code = typeof t.source === 'string' ? specialise(t.source, t.defines?.(v) ?? {}, `kernel ${name}`) : t.source(v);
      k = defineKernel({ name, code, entry: t.entry });
      made.set(key, k);
    }
    return k;
  };
}

/** A kernel with no variants (the template's defaults). */
export function singleKernel(name: string, source: string, entry: string): Kernel {
  return kernelVariants<null>({ name: () => name, source, entry })(null);
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
