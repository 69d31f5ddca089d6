// A validator recomputes another replica's contribution to a step (docs/trust.md "Validators"). On `validate`:
// - the worker uploads its inputs of that step attempt over their link (tensor kind 'vinput',
//   src/protocol/validation-tensors.ts) — and, across adapter kinds, its contribution's values and its outputs;
// - the validator accepts an upload only from the worker a `validate` named, checks the inputs against the digests
//   the neighbours' traces say they sent, then — after its own reduce and before its step-apply, so its weights are
//   the ones both committed to — saves its gradient buffer, zeroes it, replays the worker's backward order through
//   its own StageCompute (first stage: tokens from sampleBatch; last stage: targets; others: the uploaded payloads;
//   the loss scale of the step), compares the outputs, losses and the gradient, restores its gradient buffer and
//   answers `validation`. Same adapter kind: bitwise (digests). Different kinds: values within trust.tolerance.
// The replay leaves the validator's own training untouched: its gradient buffer is restored bit for bit and the
// slots it used are free between the reduce and the next step (the coordinator sends step-apply after the verdict).
import type { IncomingTensor } from '../net/tensor';
import type { Transport } from '../net/transport';
import type { ControlMessage, ControlOf } from '../protocol/messages';
import { trustOf, type RunConfig } from '../protocol/run-config';
import { readValidationMeta, VALIDATION_KIND, validationMeta, type ValidationPart } from '../protocol/validation-tensors';
import type { StageCompute } from '../model/stage-compute';
import { localSyncOf } from './local-sync';
import { digestBytes, digestVector, type BoundaryKind, type StepTraceRecorder } from './step-trace';

/**
 * Tolerance across adapter kinds when the run states none: the largest |difference| relative to the largest |value|
 * of the compared vector (a loss: relative to max(1, |loss|)). Measured lavapipe (Node, Dawn) vs SwiftShader
 * (Chromium) on one stage's replay: 2e-7 of the gradient's largest value, 1e-7 on activations, losses equal
 * (tests/browser/validator-tolerance.test.ts); 1e-5 leaves 50x room and still refuses a 0.001% nudge of the largest
 * coordinate.
 */
export const DEFAULT_CROSS_TOLERANCE = 1e-5;

export interface ValidatorHost {
  readonly run: RunConfig;
  readonly stageIndex: number;
  readonly peerId: string;
  readonly first: boolean;
  readonly last: boolean;
  readonly compute: StageCompute;
  readonly recorder: StepTraceRecorder;
  /** The contribution (stage gradient before the reduce) of the recorder's attempt, kept when validation is on. */
  contribution(): Float32Array | null;
  link(peer: string): Transport | undefined;
  /** Runs `task` on the peer's GPU chain (after every task queued before it). */
  enqueue(task: () => Promise<void>): Promise<void>;
  /** Resolves when this replica's reduce of (step, attempt) is over; rejects when the attempt is no longer current. */
  reduced(step: number, attempt: number): Promise<void>;
  batch(step: number, mb: number): { inputs: Uint32Array; targets: Uint32Array };
  lossScale(step: number, mb: number): number;
  /** The params digest of this replica's last step-done (null: none yet). */
  paramsDigest(): string | null;
  send(msg: ControlMessage): void;
  log(s: string): void;
  timeoutMs: number;
}

interface Upload {
  worker: string;
  step: number;
  attempt: number;
  expected: number | null;
  parts: { part: ValidationPart; mb: number; bytes: Uint8Array }[];
  done: () => void;
}

type Verdict = { ok: boolean; detail: string; maxAbsDiff: number | null };

/** Upload parts kept before their `validate` arrives here (bounded; oldest uploads dropped first). */
const EARLY_PARTS = 4096;

export class Validator {
  private readonly uploads = new Map<string, Upload>();
  /**
   * Upload tensors that overtook the `validate` naming their worker (the worker may get its copy of the message
   * first): kept per (step, attempt, worker) and handed over when the validation starts. Bounded.
   */
  private readonly early = new Map<string, IncomingTensor[]>();
  private earlyParts = 0;

  constructor(private readonly host: ValidatorHost) {}

  onValidate(msg: ControlOf<'validate'>): void {
    if (msg.stage !== this.host.stageIndex) return;
    if (msg.worker === this.host.peerId) void this.upload(msg).catch((e: unknown) => this.host.log(`validation upload failed: ${String(e)}`));
    if (msg.validator === this.host.peerId && msg.worker !== this.host.peerId) void this.validate(msg);
  }

  // ------------------------------------------------------------------------------------------- worker side

  private async upload(msg: ControlOf<'validate'>): Promise<void> {
    const h = this.host;
    const rec = h.recorder;
    const t = h.link(msg.validator);
    if (!t) return h.log(`no link to validator ${msg.validator}: no upload`);
    if (!rec.is(msg.step, msg.attempt)) return h.log(`validate ${msg.step}:${msg.attempt}: this peer no longer holds that attempt's inputs`);
    const key = { step: msg.step, attempt: msg.attempt, stage: h.stageIndex };
    const parts: { part: ValidationPart; mb: number; data: Uint8Array | Float32Array }[] = rec.recv.map((p) => ({
      part: p.kind,
      mb: p.mb,
      data: p.bytes,
    }));
    if (msg.values) {
      const c = h.contribution();
      if (c) parts.push({ part: 'contrib', mb: -1, data: c });
      for (const p of rec.sent) parts.push({ part: p.kind === 'act' ? 'out-act' : 'out-grad', mb: p.mb, data: p.bytes });
    }
    const sends = [
      t.sendTensor({
        kind: VALIDATION_KIND,
        dtype: 'u8',
        shape: [0],
        data: new Uint8Array(0),
        meta: validationMeta({ ...key, part: 'head', mb: -1, n: parts.length }),
      }),
    ];
    for (const p of parts) {
      const meta = validationMeta({ ...key, part: p.part, mb: p.mb, n: 0 });
      sends.push(
        p.data instanceof Float32Array
          ? t.sendTensor({ kind: VALIDATION_KIND, dtype: 'f32', shape: [p.data.length], data: p.data, meta })
          : t.sendTensor({ kind: VALIDATION_KIND, dtype: 'u8', shape: [p.data.byteLength], data: p.data.slice(), meta }),
      );
    }
    await Promise.all(sends);
  }

  // ------------------------------------------------------------------------------------------- validator side

  /** A 'vinput' tensor: accepted only from the worker of a pending validation of this stage. */
  onTensor(from: string, x: IncomingTensor): void {
    const read = readValidationMeta(x.meta);
    if (!read.ok) return this.host.log(`dropping ${VALIDATION_KIND} from ${from}: ${read.error}`);
    const m = read.value;
    if (m.stage !== this.host.stageIndex) return this.host.log(`dropping ${VALIDATION_KIND} from ${from}: not this stage's`);
    const key = `${m.step}:${m.attempt}:${from}`;
    const up = this.uploads.get(key);
    if (!up) return this.keepEarly(key, x);
    if (m.part === 'head') {
      if (up.expected !== null) return this.host.log(`dropping a second upload head from ${from}`);
      up.expected = m.n;
    } else {
      if (up.expected === null || up.parts.length >= up.expected) return this.host.log(`dropping an unannounced upload part from ${from}`);
      if ((m.part === 'contrib') !== (x.dtype === 'f32') || (m.part !== 'contrib' && x.dtype !== 'u8'))
        return this.host.log(`dropping upload part ${m.part} of dtype ${x.dtype} from ${from}`);
      up.parts.push({ part: m.part, mb: m.mb, bytes: x.bytes });
    }
    if (up.expected !== null && up.parts.length === up.expected) up.done();
  }

  private keepEarly(key: string, x: IncomingTensor): void {
    const list = this.early.get(key) ?? [];
    list.push(x);
    this.early.set(key, list);
    this.earlyParts++;
    while (this.earlyParts > EARLY_PARTS) {
      const [oldest, dropped] = this.early.entries().next().value ?? [];
      if (oldest === undefined || !dropped) break;
      this.early.delete(oldest);
      this.earlyParts -= dropped.length;
      this.host.log(`dropping an early upload (${oldest}): over ${EARLY_PARTS} parts kept`);
    }
  }

  private async validate(msg: ControlOf<'validate'>): Promise<void> {
    const h = this.host;
    const key = `${msg.step}:${msg.attempt}:${msg.worker}`;
    let verdict: Verdict;
    try {
      const received = this.receive(key, msg);
      const early = this.early.get(key) ?? [];
      this.early.delete(key);
      this.earlyParts -= early.length;
      for (const x of early) this.onTensor(msg.worker, x);
      const up = await received;
      verdict = (await this.checkUpload(msg, up)) ?? (await this.recompute(msg, up));
    } catch (err) {
      verdict = { ok: false, detail: err instanceof Error ? err.message : String(err), maxAbsDiff: null };
    } finally {
      this.uploads.delete(key);
    }
    if (verdict.detail === STALE) return; // the attempt was superseded: the coordinator no longer waits for this
    h.log(`validation of ${msg.worker} at step ${msg.step}:${msg.attempt}: ${verdict.ok ? 'ok' : 'FAILED'} (${verdict.detail})`);
    h.send({
      type: 'validation',
      step: msg.step,
      attempt: msg.attempt,
      stage: msg.stage,
      worker: msg.worker,
      ...verdict,
      detail: verdict.detail.slice(0, 512),
    });
  }

  private receive(key: string, msg: ControlOf<'validate'>): Promise<Upload> {
    return new Promise<Upload>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`upload: no complete upload from ${msg.worker} within ${this.host.timeoutMs} ms`));
      }, this.host.timeoutMs);
      const up: Upload = {
        worker: msg.worker,
        step: msg.step,
        attempt: msg.attempt,
        expected: null,
        parts: [],
        done: () => {
          clearTimeout(timer);
          resolve(up);
        },
      };
      this.uploads.set(key, up);
    });
  }

  /** The uploaded inputs (and values) must be what the neighbours' traces say was sent: else the worker fails. */
  private async checkUpload(msg: ControlOf<'validate'>, up: Upload): Promise<Verdict | null> {
    const fail = (detail: string): Verdict => ({ ok: false, detail: `upload: ${detail}`, maxAbsDiff: null });
    for (const [mb, kind, digest] of msg.inputs) {
      const p = findPart(up, kind, mb);
      if (!p) return fail(`no ${kind} input of microbatch ${mb}`);
      if ((await digestBytes(p.bytes)) !== digest) return fail(`the ${kind} input of microbatch ${mb} is not what its neighbour sent`);
    }
    if (msg.values) {
      const c = up.parts.find((p) => p.part === 'contrib');
      if (!c || !msg.contrib || (await digestBytes(c.bytes)) !== msg.contrib) return fail('the uploaded contribution is not the one its trace names');
      for (const [mb, kind, digest] of msg.outputs) {
        const p = findPart(up, kind === 'act' ? 'out-act' : 'out-grad', mb);
        if (!p || (await digestBytes(p.bytes)) !== digest) return fail(`the uploaded ${kind} output of microbatch ${mb} is not the one it sent`);
      }
    }
    return null;
  }

  /** Replays the worker's backward order on this replica's weights, between its reduce and its step-apply. */
  private async recompute(msg: ControlOf<'validate'>, up: Upload): Promise<Verdict> {
    const h = this.host;
    try {
      await h.reduced(msg.step, msg.attempt);
    } catch {
      return { ok: false, detail: STALE, maxAbsDiff: null };
    }
    const mine = h.paramsDigest();
    if (mine !== null && msg.params !== 'none' && mine !== msg.params)
      return { ok: false, detail: `validator: its weights (${mine}) are not the ones the worker committed to (${msg.params})`, maxAbsDiff: null };
    const c = h.compute;
    const outputs = new Map<string, Uint8Array>();
    const losses = new Map<number, number>();
    let grads: Float32Array | null = null;
    await h.enqueue(async () => {
      const saved = await c.readFlat('grads');
      try {
        await c.zeroGrads();
        for (const mb of msg.backward) await this.replayOne(msg, up, mb, outputs, losses);
        grads = await c.readFlat('grads');
      } finally {
        await c.writeFlat('grads', saved);
      }
    });
    if (!grads) throw new Error('validator: the replay produced no gradient');
    return this.compare(msg, up, outputs, losses, grads);
  }

  private async replayOne(
    msg: ControlOf<'validate'>,
    up: Upload,
    mb: number,
    outputs: Map<string, Uint8Array>,
    losses: Map<number, number>,
  ): Promise<void> {
    const h = this.host;
    const c = h.compute;
    const key = { step: msg.step, mb };
    const payload = (kind: BoundaryKind): Uint8Array => {
      const p = findPart(up, kind, mb);
      if (!p) throw new Error(`upload: no ${kind} input of microbatch ${mb}`);
      return p.bytes.slice();
    };
    const b = h.first || h.last ? h.batch(msg.step, mb) : null;
    const input = h.first && b ? { tokens: b.inputs } : { payload: payload('act') };
    if (h.last) {
      if (!b) throw new Error('validator: the last stage has no training tokens');
      const r = await c.forwardBackward(0, input, b.targets, h.lossScale(msg.step, mb), key);
      losses.set(mb, r.loss);
      if (r.gradIn) outputs.set(`grad:${mb}`, r.gradIn);
      return;
    }
    outputs.set(`act:${mb}`, await c.forward(0, input, key));
    const g = await c.backward(0, payload('grad'), key);
    if (g) outputs.set(`grad:${mb}`, g);
  }

  private async compare(
    msg: ControlOf<'validate'>,
    up: Upload,
    outputs: Map<string, Uint8Array>,
    losses: Map<number, number>,
    grads: Float32Array,
  ): Promise<Verdict> {
    const tol = this.host.run.trust?.tolerance ?? DEFAULT_CROSS_TOLERANCE;
    let worst = 0;
    const over = (d: number) => {
      worst = Math.max(worst, Number.isNaN(d) ? Number.POSITIVE_INFINITY : d);
      return !(d <= (msg.values ? tol : 0));
    };
    for (const [mb, kind, digest] of msg.outputs) {
      const mine = outputs.get(`${kind}:${mb}`);
      if (!mine) return { ok: false, detail: `the worker sent a ${kind} of microbatch ${mb} its backward order does not produce`, maxAbsDiff: null };
      if (!msg.values) {
        if ((await digestBytes(mine)) !== digest) return { ok: false, detail: `${kind} output of microbatch ${mb} differs`, maxAbsDiff: null };
        continue;
      }
      const theirs = findPart(up, kind === 'act' ? 'out-act' : 'out-grad', mb);
      // Across kinds a compressed payload is compared by its bytes' values only when the codec is fp32 (raw f32).
      if (theirs && this.rawF32(kind) && over(relativeDiff(asF32(mine), asF32(theirs.bytes))))
        return { ok: false, detail: `${kind} output of microbatch ${mb} differs by ${worst}`, maxAbsDiff: worst };
    }
    for (const [mb, loss] of msg.losses ?? []) {
      const mine = losses.get(mb);
      if (mine === undefined) return { ok: false, detail: `no loss of microbatch ${mb} in the replay`, maxAbsDiff: null };
      if (loss === null ? Number.isFinite(mine) : over(Math.abs(mine - loss) / Math.max(1, Math.abs(loss))))
        return { ok: false, detail: `loss of microbatch ${mb}: ${loss} reported, ${mine} recomputed`, maxAbsDiff: worst };
    }
    if (msg.values) {
      const c = up.parts.find((p) => p.part === 'contrib');
      if (!c) return { ok: false, detail: 'upload: no contribution values', maxAbsDiff: null };
      if (over(relativeDiff(grads, asF32(c.bytes)))) return { ok: false, detail: `gradient contribution differs by ${worst}`, maxAbsDiff: worst };
      return { ok: true, detail: `within ${tol} across adapter kinds`, maxAbsDiff: worst };
    }
    if (msg.contrib !== undefined && (await digestVector(grads)) !== msg.contrib)
      return { ok: false, detail: 'gradient contribution differs (bitwise, same adapter kind)', maxAbsDiff: null };
    return { ok: true, detail: `bitwise: ${msg.backward.length} microbatches`, maxAbsDiff: 0 };
  }

  private rawF32(kind: BoundaryKind): boolean {
    const spec = this.host.run.compress;
    return !spec || spec[kind].kind === 'fp32';
  }
}

const STALE = 'stale attempt';

function findPart(up: Upload, part: ValidationPart, mb: number): { bytes: Uint8Array } | undefined {
  for (let i = up.parts.length - 1; i >= 0; i--) if (up.parts[i].part === part && up.parts[i].mb === mb) return up.parts[i];
  return undefined;
}

function asF32(b: Uint8Array): Float32Array {
  const a = b.byteOffset % 4 === 0 ? b : b.slice();
  return new Float32Array(a.buffer, a.byteOffset, Math.floor(a.byteLength / 4));
}

/** Largest |a - b| (Infinity on a length mismatch or a non-finite difference). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
    if (d > m) m = d;
  }
  return m;
}

/** Largest |a - b| relative to the largest |a| (0 when both are zero; Infinity on a mismatch of length or NaN). */
export function relativeDiff(a: Float32Array, b: Float32Array): number {
  const d = maxAbsDiff(a, b);
  if (d === 0 || !Number.isFinite(d)) return d;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m > 0 ? d / m : Number.POSITIVE_INFINITY;
}

/** Whether a run validates at all (per-step mode only: local-steps replicas hold different weights between syncs). */
export function validates(run: RunConfig): boolean {
  return trustOf(run).validationRate > 0 && localSyncOf(run) === null;
}
