// State transfer: a joining replica copies the weights and AdamW state of its stage from a live replica, between
// steps (docs/swarm.md, Membership).
//
// Wire: four tensors of kind 'stage-state', sent back to back on one transport (a transport delivers tensors in send
// order; the framed transport chunks big ones):
//   1. part 'layout'  u8  [bytes]  UTF-8 layout string; meta {xfer, part, step, n, digest, ...caller meta}
//   2. part 'params'  f32 [n]      meta {xfer, part}
//   3. part 'm'       f32 [n]
//   4. part 'v'       f32 [n]
// `digest` is stateDigest() of the whole state; the receiver recomputes it and refuses the state on a mismatch.
// A layout other than `expectLayout`, wrong lengths, dtype or order are refused with a clear error, and the rest of
// that transfer is discarded as it arrives.
//
// Incoming parts are collected through the per-transport TensorDemux (src/net/tensor-demux.ts), so a transfer that arrives
// before receiveStageState() is called is kept, and all-reduce traffic on the same link does not interfere.

import type { Unsubscribe } from '../net/emitter';
import type { IncomingTensor, TensorMeta } from '../net/tensor';
import type { Transport } from '../net/transport';
import { TensorDemux } from '../net/tensor-demux';
import {
  readStateMeta,
  STATE_BUFFER_PARTS,
  STATE_OUTER_PARTS,
  STATE_RESERVED_META,
  stateHeadMeta,
  statePartMeta,
  type StateHeadMeta,
} from '../protocol/tensors';

export const STATE_KIND = 'stage-state';
const DEFAULT_TIMEOUT_MS = 120_000;
const PARTS = ['layout', ...STATE_BUFFER_PARTS] as const;
const PARTS_WITH_OUTER = [...PARTS, ...STATE_OUTER_PARTS] as const;
type BufferPart = (typeof PARTS_WITH_OUTER)[number] & string;

/**
 * Local-steps mode: the outer state every replica of a stage shares (θ_sync and the outer momentum). A replica's
 * error-feedback residual is its own and does not travel: a joiner starts with a zero residual (copying the source's
 * would count that residual twice in the next average).
 */
export type OuterShared = Record<(typeof STATE_OUTER_PARTS)[number], Float32Array>;

export interface StageState {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** AdamW step count (number of optimizer steps applied so far). */
  step: number;
  /** A string identifying the flat layout (see layoutOf), so a mismatched stage is refused. */
  layout: string;
  /** Local-steps mode only: the stage's shared outer state (same layout as params). */
  outer?: OuterShared;
}

export interface ReceivedStageState extends StageState {
  /** The caller meta given to sendStageState. */
  meta: TensorMeta;
  /** The verified digest (equals stateDigest of this state). */
  digest: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Digest: 64-bit FNV-1a-style hash over little-endian 32-bit words (pure TS, ~1 GB/s class in V8).
//
// Per word w: h = (h XOR w) * 0x100000001b3 mod 2^64 (the FNV-1a 64 offset basis and prime, but consuming 32-bit
// words instead of bytes: 4x fewer multiplications). Not the byte-wise FNV-1a test vectors; not cryptographic. It is
// used to check that replicas are bitwise identical (floats are hashed by their bits: -0 != 0, NaN payloads count).

export class Fnv64 {
  private hi = 0xcbf29ce4;
  private lo = 0x84222325;

  /** Hashes the bytes of `data` as 32-bit words (its byteLength must be a multiple of 4). */
  update(data: Float32Array | Uint32Array | Int32Array): this {
    const u = data instanceof Uint32Array ? data : new Uint32Array(data.buffer, data.byteOffset, data.length);
    let hi = this.hi;
    let lo = this.lo;
    for (let i = 0; i < u.length; i++) {
      lo = (lo ^ u[i]) >>> 0;
      // (hi:lo) * (2^40 + 0x1b3) mod 2^64
      const lo435 = lo * 0x1b3; // < 2^41, exact
      const carry = Math.floor(lo435 / 4294967296);
      hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0;
      lo = lo435 >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
    return this;
  }

  /** Hashes a number as its two float64 words (lengths, step counts: keeps parts apart). */
  number(x: number): this {
    return this.update(new Uint32Array(new Float64Array([x]).buffer));
  }

  /** Hashes a string (UTF-8, zero-padded to whole words, length first). */
  string(s: string): this {
    const bytes = new TextEncoder().encode(s);
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    this.number(bytes.byteLength);
    return this.update(new Uint32Array(padded.buffer));
  }

  hex(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}

/** Digest of one flat f32 buffer (e.g. `paramsDigest` in step-done). */
export function floatDigest(data: Float32Array): string {
  return new Fnv64().number(data.length).update(data).hex();
}

/** Digest of a whole stage state: layout, step and the bits of params, m, v. Equal digests <=> identical replicas. */
export function stateDigest(s: StageState): string {
  const h = new Fnv64()
    .string(s.layout)
    .number(s.step)
    .number(s.params.length)
    .update(s.params)
    .number(s.m.length)
    .update(s.m)
    .number(s.v.length)
    .update(s.v);
  if (s.outer) for (const part of STATE_OUTER_PARTS) h.number(s.outer[part].length).update(s.outer[part]);
  return h.hex();
}

/**
 * The layout string of a ParamStore-like object: JSON {total, slots: [[name, offset, size, shape], ...]} in slot
 * order. Two stages with the same layout string have interchangeable flat buffers.
 */
export function layoutOf(store: { slots: { spec: { name: string; shape: number[] }; offset: number; size: number }[]; total: number }): string {
  return JSON.stringify({
    total: store.total,
    slots: store.slots.map((s) => [s.spec.name, s.offset, s.size, [...s.spec.shape]]),
  });
}

/** The `total` of a layoutOf() string, or undefined for a layout string of another form. */
function layoutTotal(layout: string): number | undefined {
  try {
    const v = JSON.parse(layout) as unknown;
    if (v && typeof v === 'object' && 'total' in v && Number.isSafeInteger((v as { total: unknown }).total)) {
      return (v as { total: number }).total;
    }
  } catch {
    // Not ours; only exact string equality is checked then.
  }
  return undefined;
}

function describeLayout(layout: string): string {
  const short = layout.length > 120 ? `${layout.slice(0, 117)}...` : layout;
  return `${short} [${layout.length} chars, digest ${new Fnv64().string(layout).hex()}]`;
}

function validateState(s: StageState, where: string): void {
  for (const k of ['params', 'm', 'v'] as const) {
    if (!(s[k] instanceof Float32Array)) throw new Error(`${where}: ${k} must be a Float32Array`);
  }
  if (s.m.length !== s.params.length || s.v.length !== s.params.length) {
    throw new Error(`${where}: params/m/v lengths differ (${s.params.length}/${s.m.length}/${s.v.length})`);
  }
  if (s.outer) {
    for (const part of STATE_OUTER_PARTS) {
      const b = s.outer[part];
      if (!(b instanceof Float32Array) || b.length !== s.params.length)
        throw new Error(`${where}: outer ${part} must be a Float32Array as long as params`);
    }
  }
  if (!Number.isSafeInteger(s.step) || s.step < 0) throw new Error(`${where}: step must be an integer >= 0, got ${s.step}`);
  if (typeof s.layout !== 'string' || s.layout.length === 0) throw new Error(`${where}: layout must be a non-empty string`);
  const total = layoutTotal(s.layout);
  if (total !== undefined && total !== s.params.length) {
    throw new Error(`${where}: layout says ${total} elements, buffers hold ${s.params.length}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sending.

let xferCounter = 0;

/**
 * Sends a stage's state. Resolves when every part has been handed to the channel (not when it was received or
 * accepted). The buffers must not change until it resolves. `meta` (flat JSON scalars, e.g. {stage: 1, runId})
 * travels with it and comes back as `meta` from receiveStageState.
 */
export async function sendStageState(t: Transport, s: StageState, meta: Record<string, unknown> = {}): Promise<void> {
  validateState(s, 'sendStageState');
  const extra: TensorMeta = {};
  for (const [k, v] of Object.entries(meta)) {
    if (STATE_RESERVED_META.has(k)) throw new Error(`sendStageState: meta key "${k}" is reserved`);
    if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new Error(`sendStageState: meta "${k}" must be a string, number, boolean or null`);
    }
    extra[k] = v;
  }
  const xfer = `${Date.now().toString(36)}-${(xferCounter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const n = s.params.length;
  const layoutBytes = new TextEncoder().encode(s.layout);
  const sends = [
    t.sendTensor({
      kind: STATE_KIND,
      dtype: 'u8',
      shape: [layoutBytes.byteLength],
      data: layoutBytes,
      meta: stateHeadMeta({ xfer, part: 'layout', step: s.step, n, digest: stateDigest(s), outer: s.outer !== undefined }, extra),
    }),
    ...STATE_BUFFER_PARTS.map((part) =>
      t.sendTensor({ kind: STATE_KIND, dtype: 'f32', shape: [n], data: s[part], meta: statePartMeta({ xfer, part }) }),
    ),
  ];
  const outer = s.outer;
  if (outer) {
    for (const part of STATE_OUTER_PARTS) {
      sends.push(t.sendTensor({ kind: STATE_KIND, dtype: 'f32', shape: [n], data: outer[part], meta: statePartMeta({ xfer, part }) }));
    }
  }
  const results = await Promise.allSettled(sends);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    const why = failed.reason instanceof Error ? failed.reason.message : String(failed.reason);
    throw new Error(`sendStageState to peer ${t.peerId} failed: ${why}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Receiving.

/** Per-transport queue of incoming state parts (through TensorDemux, registered once). */
class StateMailbox {
  private static readonly attached = new WeakMap<Transport, StateMailbox>();

  static of(t: Transport): StateMailbox {
    let m = StateMailbox.attached.get(t);
    if (!m) {
      m = new StateMailbox(t);
      StateMailbox.attached.set(t, m);
    }
    return m;
  }

  private queue: IncomingTensor[] = [];
  private waiter: ((x: IncomingTensor) => void) | null = null;
  /** Transfers refused or abandoned here: their remaining parts are dropped on arrival. */
  private readonly discarded = new Set<string>();

  private constructor(readonly transport: Transport) {
    TensorDemux.of(transport).on(STATE_KIND, (x) => this.accept(x));
    transport.onClose(() => {
      this.queue = [];
    });
  }

  private accept(x: IncomingTensor): void {
    if (typeof x.meta.xfer === 'string' && this.discarded.has(x.meta.xfer)) return;
    if (this.waiter) this.waiter(x);
    else this.queue.push(x);
  }

  /** One consumer at a time. */
  subscribe(handler: (x: IncomingTensor) => void): Unsubscribe {
    if (this.waiter) throw new Error(`a receiveStageState is already waiting on the link to ${this.transport.peerId}`);
    this.waiter = handler;
    while (this.waiter === handler) {
      const x = this.queue.shift();
      if (!x) break;
      handler(x);
    }
    return () => this.release(handler);
  }

  /** Stops feeding `handler` (safe to call from inside it, also during subscribe's backlog flush). */
  release(handler: (x: IncomingTensor) => void): void {
    if (this.waiter === handler) this.waiter = null;
  }

  discard(xfer: string): void {
    this.discarded.add(xfer);
    if (this.discarded.size > 256) this.discarded.delete(this.discarded.values().next().value as string);
    this.queue = this.queue.filter((x) => x.meta.xfer !== xfer);
  }
}

/** Call synchronously when the transport is obtained if a state may arrive before receiveStageState is called. */
export function attachStateMailbox(t: Transport): void {
  StateMailbox.of(t);
}

export class StateTransferError extends Error {
  override name = 'StateTransferError';
}

/**
 * Receives one stage state from `t`. Rejects (StateTransferError) on a layout other than `expectLayout`, wrong
 * lengths/dtype/order, a digest mismatch, the link closing, or `timeoutMs` (default 120 s, whole transfer) passing.
 */
export function receiveStageState(
  t: Transport,
  opts: {
    timeoutMs?: number;
    expectLayout?: string;
    /** Local-steps mode: the state must carry the outer state (and must not otherwise). */ expectOuter?: boolean;
  } = {},
): Promise<ReceivedStageState> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const box = StateMailbox.of(t);
  const from = `peer ${t.peerId}`;
  return new Promise<ReceivedStageState>((resolve, reject) => {
    let done = false;
    let xfer: string | null = null;
    let head: (StateHeadMeta & { layout: string; meta: TensorMeta }) | null = null;
    const bufs: Partial<Record<BufferPart, Float32Array>> = {};
    let parts: readonly string[] = PARTS;
    let next = 0; // index into PARTS
    const offs: Unsubscribe[] = [];
    const end = () => {
      done = true;
      box.release(onPart);
      for (const off of offs) off();
    };
    const fail = (msg: string) => {
      if (done) return;
      if (xfer) box.discard(xfer);
      end();
      reject(new StateTransferError(`receiveStageState from ${from}: ${msg}`));
    };

    const onPart = (x: IncomingTensor) => {
      if (done) return;
      const read = readStateMeta(x.meta);
      if (!read.ok) return fail(read.error);
      if (next === 0) {
        if (!('head' in read.value)) return fail(`expected the layout part first, got "${read.value.part.part}"`);
        const m = read.value.head;
        xfer = m.xfer;
        if (x.dtype !== 'u8') return fail(`layout part has dtype ${x.dtype}`);
        const layout = new TextDecoder().decode(x.bytes);
        if (opts.expectLayout !== undefined && layout !== opts.expectLayout) {
          return fail(`layout mismatch (wrong stage?): expected ${describeLayout(opts.expectLayout)}, got ${describeLayout(layout)}`);
        }
        const total = layoutTotal(layout);
        if (total !== undefined && total !== m.n) return fail(`layout says ${total} elements, sender announces ${m.n}`);
        const outer = m.outer === true;
        if (opts.expectOuter !== undefined && opts.expectOuter !== outer) {
          return fail(opts.expectOuter ? 'a local-steps state without its outer state' : 'an outer state in a per-step run');
        }
        parts = outer ? PARTS_WITH_OUTER : PARTS;
        const meta: TensorMeta = {};
        for (const [k, v] of Object.entries(x.meta)) if (!STATE_RESERVED_META.has(k)) meta[k] = v;
        head = { ...m, layout, meta };
        next = 1;
        return;
      }
      const h = head;
      if (!h) return fail('a buffer part before the layout');
      if (!('part' in read.value)) return fail(`a second layout part inside transfer ${String(xfer)}`);
      const m = read.value.part;
      const part = parts[next];
      if (m.xfer !== xfer) return fail(`part of transfer ${m.xfer} arrived inside transfer ${String(xfer)}`);
      if (m.part !== part) return fail(`expected part "${part}", got "${m.part}"`);
      const n = h.n;
      if (x.dtype !== 'f32') return fail(`${part} has dtype ${x.dtype}, expected f32`);
      if (x.shape.length !== 1 || x.shape[0] !== n || x.bytes.byteLength !== n * 4) {
        return fail(`${part} has shape [${x.shape.join(',')}], expected [${n}]`);
      }
      const b = x.bytes;
      bufs[m.part] = b.byteOffset % 4 === 0 ? new Float32Array(b.buffer, b.byteOffset, n) : new Float32Array(b.slice().buffer);
      next++;
      if (next < parts.length) return;
      const { params, m: mom, v, sync, mom: outerMom } = bufs;
      if (!params || !mom || !v) return fail('incomplete state');
      const state: StageState = { params, m: mom, v, step: h.step, layout: h.layout };
      if (h.outer) {
        if (!sync || !outerMom) return fail('incomplete outer state');
        state.outer = { sync, mom: outerMom };
      }
      const digest = stateDigest(state);
      if (digest !== h.digest) return fail(`digest mismatch: sender ${h.digest}, received ${digest}`);
      end();
      resolve({ ...state, meta: h.meta, digest });
    };

    if (!t.isOpen) return fail(`link is closed (${t.closeInfo?.reason}: ${t.closeInfo?.detail})`);
    offs.push(t.onClose((info) => fail(`link closed (${info.reason}: ${info.detail})`)));
    const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms (${next} of ${parts.length} parts received)`), timeoutMs);
    offs.push(() => clearTimeout(timer));
    try {
      box.subscribe(onPart);
    } catch (err) {
      fail(err instanceof Error ? err.message : String(err));
    }
  });
}
