// Local-steps replica sync (DiLoCo / IOTA; docs/compression.md "Local steps"): the outer state of one stage replica
// (θ_sync, the Nesterov momentum, the error-feedback buffer of the sync codec) and its GPU kernels
// (shaders/outer.wgsl). The same class serves the swarm's stage replicas and the single-process simulation, so both
// run the same launches on the same bits.
//
// The pseudo-gradient is encoded PER PARAMETER TENSOR, with a rounding key built from the tensor's name and the
// replica's lane: a tensor's payload then does not depend on how the model is cut into stages, so a stage replica and
// a whole-model simulation produce the same bits, and the tied wte (held by the first and the last stage of a lane)
// is encoded identically on both and stays bitwise equal without any exchange.
import code from '../../shaders/outer.wgsl?raw';
import { packParams, singleKernel } from '../gpu/kernel';
import type { Runtime } from '../gpu/runtime';
import { expectNoAliasing, expectSize, type Tensor } from '../gpu/tensor';
import type { ParamStore } from './params';

const pseudoGradKernel = singleKernel('outer_pseudo_grad', code, 'outer_pseudo_grad');
const subKernel = singleKernel('outer_sub', code, 'outer_sub');
const addKernel = singleKernel('outer_add', code, 'outer_add');
const nesterovKernel = singleKernel('outer_nesterov', code, 'outer_nesterov');

function checkN(op: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${op}: n must be a non-negative integer, got ${n}`);
}

/** ef[i] += sync[i] - params[i] for i < n: this replica's pseudo-gradient joins what earlier syncs did not send. */
export function outerPseudoGrad(rt: Runtime, a: { sync: Tensor; params: Tensor; ef: Tensor }, n: number): void {
  const op = 'outer_pseudo_grad';
  checkN(op, n);
  for (const [w, t] of [
    ['sync', a.sync],
    ['params', a.params],
    ['ef', a.ef],
  ] as const)
    expectSize(op, w, t, n);
  expectNoAliasing(
    op,
    [
      ['sync', a.sync],
      ['params', a.params],
    ],
    [['ef', a.ef]],
  );
  rt.launch(
    pseudoGradKernel,
    { sync_r: a.sync, params_r: a.params, ef: a.ef },
    rt.grid1d(n, 256),
    packParams([
      ['u32', n],
      ['f32', 1],
      ['f32', 0],
      ['f32', 0],
    ]),
  );
}

/** dst[i] += sign * dec[i] for i < n (sign -1: error feedback keeps what the payload did not carry; +1: sum of payloads). */
export function outerAccumulate(rt: Runtime, a: { dst: Tensor; dec: Tensor }, n: number, sign: 1 | -1): void {
  const op = sign > 0 ? 'outer_add' : 'outer_sub';
  checkN(op, n);
  expectSize(op, 'dst', a.dst, n);
  expectSize(op, 'dec', a.dec, n);
  expectNoAliasing(op, [['dec', a.dec]], [['dst', a.dst]]);
  rt.launch(
    sign > 0 ? addKernel : subKernel,
    { dec: a.dec, dst: a.dst },
    rt.grid1d(n, 256),
    packParams([
      ['u32', n],
      ['f32', 1],
      ['f32', 0],
      ['f32', 0],
    ]),
  );
}

export interface OuterHyper {
  /** Outer learning rate (DiLoCo 0.7). */
  lr: number;
  /** Nesterov momentum (DiLoCo 0.9). */
  momentum: number;
}

/**
 * The outer Nesterov step over i < n, from the sum of the R replicas' decoded pseudo-gradients in `acc`:
 * d = acc / R; mom = μ mom + d; sync = sync − lr (d + μ mom); params = sync (PyTorch SGD, nesterov, dampening 0).
 */
export function outerNesterov(
  rt: Runtime,
  a: { acc: Tensor; sync: Tensor; mom: Tensor; params: Tensor },
  d: { n: number; replicas: number } & OuterHyper,
): void {
  const op = 'outer_nesterov';
  checkN(op, d.n);
  if (!Number.isInteger(d.replicas) || d.replicas < 1) throw new Error(`${op}: replicas must be a positive integer, got ${d.replicas}`);
  if (!(d.lr >= 0) || !Number.isFinite(d.lr)) throw new Error(`${op}: lr must be finite and >= 0, got ${d.lr}`);
  if (!(d.momentum >= 0 && d.momentum < 1)) throw new Error(`${op}: momentum must be in [0, 1), got ${d.momentum}`);
  for (const [w, t] of [
    ['acc', a.acc],
    ['sync', a.sync],
    ['mom', a.mom],
    ['params', a.params],
  ] as const)
    expectSize(op, w, t, d.n);
  expectNoAliasing(
    op,
    [['acc', a.acc]],
    [
      ['sync', a.sync],
      ['mom', a.mom],
      ['params', a.params],
    ],
  );
  rt.launch(
    nesterovKernel,
    { acc: a.acc, sync_w: a.sync, mom: a.mom, params: a.params },
    rt.grid1d(d.n, 256),
    packParams([
      ['u32', d.n],
      ['f32', d.replicas],
      ['f32', d.lr],
      ['f32', d.momentum],
    ]),
  );
}

/** Counter-based rounding key of the codecs (src/compress/codec.ts, docs/compression.md "Keys"). */
export interface SyncRoundingKey {
  seed: number;
  step: number;
  mb: number;
  stream: number;
}

/**
 * What the sync needs of a codec: exactly the GpuCodec contract of src/compress/codec.ts (docs/compression.md), so a
 * GpuCodec is one. `decode` validates the payload (throws naming the codec and the problem) and overwrites n values.
 */
export interface SyncCodec {
  encode(rt: Runtime, src: Tensor, n: number, key: SyncRoundingKey): Promise<Uint8Array>;
  decode(rt: Runtime, payload: Uint8Array, out: Tensor, n: number): void;
}

/** FNV-1a of a parameter name: the tensor's id in a sync payload and part of its rounding stream. */
export function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The rounding key of tensor `name` of lane `lane`'s pseudo-gradient at the sync after step `step`. Streams of
 * activations and their gradients are small (2*boundary + dir); sync streams have the top bit set.
 */
export function syncKey(seed: number, step: number, lane: number, name: string): SyncRoundingKey {
  return { seed, step, mb: lane, stream: (0x80000000 | (nameHash(name) >>> 1)) >>> 0 };
}

const MAGIC = 0x4e595354; // 'TSYN' little-endian
const HEAD_WORDS = 2; // magic, tensor count

/**
 * One replica's sync payload: [magic u32][count u32] then per tensor [name hash u32][byte length u32], then the
 * tensors' codec payloads back to back, in the store's slot order.
 */
export function packSyncPayload(parts: readonly { hash: number; bytes: Uint8Array }[]): Uint8Array {
  const head = (HEAD_WORDS + 2 * parts.length) * 4;
  const total = parts.reduce((n, p) => n + p.bytes.length, head);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, parts.length, true);
  let off = head;
  parts.forEach((p, i) => {
    dv.setUint32(8 + 8 * i, p.hash, true);
    dv.setUint32(12 + 8 * i, p.bytes.length, true);
    out.set(p.bytes, off);
    off += p.bytes.length;
  });
  return out;
}

/** Splits a sync payload into its tensors' codec payloads, checked against the expected tensor names in order. */
export function unpackSyncPayload(payload: Uint8Array, names: readonly string[]): Uint8Array[] {
  const bad = (why: string) => new Error(`local-sync payload: ${why}`);
  if (payload.length < HEAD_WORDS * 4) throw bad(`${payload.length} bytes, shorter than its header`);
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw bad('bad magic (not a sync payload)');
  const count = dv.getUint32(4, true);
  if (count !== names.length) throw bad(`${count} tensors, this stage holds ${names.length}`);
  const head = (HEAD_WORDS + 2 * count) * 4;
  if (payload.length < head) throw bad(`${payload.length} bytes, shorter than its ${count}-tensor header`);
  const out: Uint8Array[] = [];
  let off = head;
  for (let i = 0; i < count; i++) {
    const hash = dv.getUint32(8 + 8 * i, true);
    if (hash !== nameHash(names[i])) throw bad(`tensor ${i} is not ${names[i]} (layout mismatch)`);
    const len = dv.getUint32(12 + 8 * i, true);
    if (off + len > payload.length) throw bad(`tensor ${names[i]} (${len} bytes at ${off}) overruns the ${payload.length}-byte payload`);
    out.push(payload.subarray(off, off + len));
    off += len;
  }
  if (off !== payload.length) throw bad(`${payload.length - off} trailing bytes`);
  return out;
}

/** Microbatches of lane `lane` among M with R lanes: k ≡ lane (mod R), in order. */
export function laneMicrobatches(M: number, R: number, lane: number): number[] {
  const out: number[] = [];
  for (let k = lane; k < M; k += R) out.push(k);
  return out;
}

/** Whether the outer sync runs after step `step` (every H steps and after the run's last step). */
export function isSyncStep(step: number, H: number, steps: number): boolean {
  return (step + 1) % H === 0 || step === steps - 1;
}

export type OuterPart = 'sync' | 'mom' | 'ef';
export const OUTER_PARTS: readonly OuterPart[] = ['sync', 'mom', 'ef'];

/** The outer state of one stage replica over its ParamStore's flat buffers (same layout, same padding). */
export class OuterState {
  readonly sync: Tensor;
  readonly mom: Tensor;
  readonly ef: Tensor;
  /** Decoded payload (one tensor's view at a time) and the sum of the replicas' payloads. */
  private readonly dec: Tensor;
  private readonly acc: Tensor;
  private readonly views = new Map<string, Tensor>();

  constructor(
    private readonly rt: Runtime,
    readonly store: ParamStore,
  ) {
    const n = store.total;
    this.sync = rt.tensor([n], 'outer.sync');
    this.mom = rt.tensor([n], 'outer.mom');
    this.ef = rt.tensor([n], 'outer.ef');
    this.dec = rt.tensor([n], 'outer.dec');
    this.acc = rt.tensor([n], 'outer.acc');
    this.reset();
  }

  /** θ_sync = the current weights; momentum and error feedback zero (the start of a run). */
  reset(): void {
    const { rt, store } = this;
    rt.copy(store.params, this.sync, store.total);
    for (const t of [this.mom, this.ef, this.dec, this.acc]) rt.fill(t, 0);
  }

  private view(which: 'ef' | 'dec', name: string): Tensor {
    const key = `${which}:${name}`;
    let t = this.views.get(key);
    if (!t) {
      const s = this.store.slotOf(name);
      t = this.rt.view(which === 'ef' ? this.ef : this.dec, s.offset, [s.size], `outer.${which}.${name}`);
      this.views.set(key, t);
    }
    return t;
  }

  /** Names of the tensors in payload order. */
  get names(): string[] {
    return this.store.slots.map((s) => s.spec.name);
  }

  /**
   * This replica's compressed pseudo-gradient with error feedback: ef += θ_sync − θ; per tensor payload =
   * encode(ef); ef −= decode(payload). `step` and `lane` key the codec's rounding.
   */
  async encode(codec: SyncCodec, key: { seed: number; step: number; lane: number }): Promise<Uint8Array> {
    const { rt, store } = this;
    outerPseudoGrad(rt, { sync: this.sync, params: store.params, ef: this.ef }, store.total);
    const parts: { hash: number; bytes: Uint8Array }[] = [];
    for (const s of store.slots) {
      const name = s.spec.name;
      const bytes = await codec.encode(rt, this.view('ef', name), s.size, syncKey(key.seed, key.step, key.lane, name));
      parts.push({ hash: nameHash(name), bytes });
    }
    // dec's padding between tensors stays 0 (reset fills it, decode writes only the tensors).
    for (let i = 0; i < parts.length; i++) {
      const s = store.slots[i];
      codec.decode(rt, parts[i].bytes, this.view('dec', s.spec.name), s.size);
    }
    outerAccumulate(rt, { dst: this.ef, dec: this.dec }, store.total, -1);
    return packSyncPayload(parts);
  }

  /**
   * The outer step from every replica's payload, in rank order (every replica passes the same list and so ends
   * with the same bits): acc = Σ_r decode(payload_r); Nesterov on θ_sync; θ = θ_sync. Payloads are validated
   * (layout and codec) before anything is written.
   */
  apply(codec: SyncCodec, payloads: readonly Uint8Array[], hyper: OuterHyper): void {
    if (payloads.length < 1) throw new Error('outer step: no payloads');
    const { rt, store } = this;
    const names = this.names;
    const split = payloads.map((p, r) => {
      try {
        return unpackSyncPayload(p, names);
      } catch (err) {
        throw new Error(`replica ${r}: ${(err as Error).message}`, { cause: err });
      }
    });
    rt.fill(this.acc, 0);
    for (const parts of split) {
      store.slots.forEach((s, i) => codec.decode(rt, parts[i], this.view('dec', s.spec.name), s.size));
      outerAccumulate(rt, { dst: this.acc, dec: this.dec }, store.total, 1);
    }
    outerNesterov(
      rt,
      { acc: this.acc, sync: this.sync, mom: this.mom, params: store.params },
      { n: store.total, replicas: payloads.length, ...hyper },
    );
  }

  /** A part of the outer state, host side (state transfer to a joiner). */
  readFlat(which: OuterPart): Promise<Float32Array> {
    return this.rt.read(this[which]);
  }

  writeFlat(which: OuterPart, data: Float32Array): void {
    if (data.length !== this.store.total) throw new Error(`outer state ${which}: ${data.length} values, the stage holds ${this.store.total}`);
    this.rt.write(this[which], data);
  }

  dispose(): void {
    for (const t of [this.sync, this.mom, this.ef, this.dec, this.acc]) this.rt.release(t);
  }
}
