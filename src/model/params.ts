// A stage's parameters live in four flat GPU buffers (params, grads, AdamW m and v). Every parameter tensor is a
// view at an offset aligned for storage binding, weight-decayed tensors first, so AdamW runs as two launches (decay,
// no decay), gradient clipping is one reduction, and the swarm's all-reduce and checkpoints move one buffer.
import type { Runtime } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import type { ParamSpec } from './config';
import { digestFloats } from './digest';

export interface ParamSlot {
  spec: ParamSpec;
  offset: number;
  size: number;
}

/** Values [offset, offset + count) of a flat buffer (a parameter's slot). */
export interface FlatRange {
  offset: number;
  count: number;
}

export class ParamStore {
  readonly slots: ParamSlot[];
  readonly byName = new Map<string, ParamSlot>();
  /** Elements in the decayed group [0, decayEnd) and the whole store [0, total) (both alignment-padded). */
  readonly decayEnd: number;
  readonly total: number;
  readonly params: Tensor;
  readonly grads: Tensor;
  readonly m: Tensor;
  readonly v: Tensor;
  private views = new Map<string, Tensor>();

  constructor(
    private readonly rt: Runtime,
    specs: ParamSpec[],
    label = 'params',
  ) {
    const align = rt.viewAlignment;
    const ordered = [...specs.filter((s) => s.decay), ...specs.filter((s) => !s.decay)];
    let off = 0;
    let decayEnd = 0;
    this.slots = ordered.map((spec) => {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      const slot = { spec, offset: off, size };
      off += Math.ceil(size / align) * align;
      if (spec.decay) decayEnd = off;
      return slot;
    });
    for (const s of this.slots) {
      if (this.byName.has(s.spec.name)) throw new Error(`ParamStore: duplicate parameter ${s.spec.name}`);
      this.byName.set(s.spec.name, s);
    }
    this.decayEnd = decayEnd;
    this.total = Math.max(off, align);
    this.params = rt.tensor([this.total], `${label}.params`);
    this.grads = rt.tensor([this.total], `${label}.grads`);
    this.m = rt.tensor([this.total], `${label}.adam_m`);
    this.v = rt.tensor([this.total], `${label}.adam_v`);
    for (const t of [this.params, this.grads, this.m, this.v]) rt.fill(t, 0);
  }

  /** Number of real (unpadded) parameters. */
  get count(): number {
    return this.slots.reduce((n, s) => n + s.size, 0);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Where parameter `name` lives in the flat buffers (an error naming it when the store lacks it). */
  slotOf(name: string): ParamSlot {
    const s = this.byName.get(name);
    if (!s) throw new Error(`no parameter ${name} in this stage`);
    return s;
  }

  /** The parameter tensor `name` (a view into the flat buffer). */
  p(name: string): Tensor {
    return this.view('p', name, this.params);
  }

  /** The gradient of `name`. */
  g(name: string): Tensor {
    return this.view('g', name, this.grads);
  }

  private view(kind: string, name: string, flat: Tensor): Tensor {
    const key = kind + name;
    let t = this.views.get(key);
    if (!t) {
      const s = this.slotOf(name);
      t = this.rt.view(flat, s.offset, s.spec.shape, `${kind === 'p' ? '' : 'd'}${name}`);
      this.views.set(key, t);
    }
    return t;
  }

  /** Writes host values for every parameter (missing or misshapen entries are errors naming the tensor). */
  load(values: Map<string, Float32Array>): void {
    const host = new Float32Array(this.total);
    for (const s of this.slots) {
      const v = values.get(s.spec.name);
      if (!v) throw new Error(`load: missing parameter ${s.spec.name}`);
      if (v.length !== s.size) throw new Error(`load: ${s.spec.name} has ${v.length} values, expected ${s.size} [${s.spec.shape.join(', ')}]`);
      host.set(v, s.offset);
    }
    this.rt.write(this.params, host);
  }

  /** Reads every parameter back (or every gradient with `which = 'grads'`). */
  async read(which: 'params' | 'grads' | 'm' | 'v' = 'params'): Promise<Map<string, Float32Array>> {
    const flat = await this.rt.read(this[which]);
    const out = new Map<string, Float32Array>();
    for (const s of this.slots) out.set(s.spec.name, flat.slice(s.offset, s.offset + s.size));
    return out;
  }

  /**
   * The whole flat buffer, host side (optimizer state transfer, all-reduce tests, bitwise comparisons), or only the
   * values [range.offset, range.offset + range.count) (one parameter's slot: the tied wte's gradient).
   */
  readFlat(which: 'params' | 'grads' | 'm' | 'v', range?: FlatRange): Promise<Float32Array> {
    if (range) return this.rt.readRange(this[which], range.offset, range.count);
    return this.rt.read(this[which]);
  }

  /** digestFloats of the whole flat buffer, computed on the mapped readback (no host copy of it). */
  digest(which: 'params' | 'grads' | 'm' | 'v'): Promise<string> {
    const t = this[which];
    return this.rt.readWith(t, t.size, digestFloats);
  }

  /** The whole flat buffer, or with `offset` the values from there on (a part written by readFlat's range). */
  writeFlat(which: 'params' | 'grads' | 'm' | 'v', data: Float32Array, offset?: number): void {
    if (offset === undefined) {
      if (data.length !== this.total) throw new Error(`writeFlat ${which}: ${data.length} values, store holds ${this.total}`);
      this.rt.write(this[which], data);
      return;
    }
    if (!(Number.isInteger(offset) && offset >= 0 && offset + data.length <= this.total)) {
      throw new Error(`writeFlat ${which}: ${data.length} values at ${offset} overflow the store's ${this.total}`);
    }
    this.rt.write(this[which], data, offset);
  }

  zeroGrads(): void {
    this.rt.fill(this.grads, 0);
  }
}
