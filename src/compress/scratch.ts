// GPU scratch a codec keeps between calls (docs/kernels.md: launchers never allocate in the hot path): one tensor
// per role, grown when a larger n arrives, otherwise reused.
import type { Runtime } from '../gpu/runtime';
import type { DType, Tensor } from '../gpu/tensor';

export class Scratch {
  private held = new Map<string, Tensor>();

  constructor(
    private readonly rt: Runtime,
    private readonly owner: string,
  ) {}

  /** A tensor of at least `size` elements for `role` (contents undefined). */
  get(role: string, size: number, dtype: DType = 'u32'): Tensor {
    const t = this.held.get(role);
    if (t && t.size >= size && t.dtype === dtype) return t;
    if (t) this.rt.release(t);
    const fresh = this.rt.tensor([Math.max(1, size)], `${this.owner} ${role}`, dtype);
    this.held.set(role, fresh);
    return fresh;
  }

  /** Checks a call uses the runtime the codec was made for (its scratch lives there). */
  check(rt: Runtime): void {
    if (rt !== this.rt) throw new Error(`${this.owner}: called with another runtime than the one it was created on`);
  }

  release(): void {
    for (const t of this.held.values()) this.rt.release(t);
    this.held.clear();
  }
}
