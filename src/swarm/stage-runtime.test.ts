// StageRuntime's protocol logic against a fake StageCompute (no GPU, no network): what the StageCompute seam buys.
import { beforeAll, describe, expect, it } from 'vitest';
import { TRUST_NONE, type RunConfig } from '../protocol/run-config';
import { DEFAULT_OPTIMIZER } from '../model/stage';
import { Emitter } from '../net/emitter';
import type { ControlMessage } from '../protocol/messages';
import type { IncomingTensor } from '../net/tensor';
import type { Transport } from '../net/transport';
import { Links } from './links';
import type { FlatRange, FlatWhich, StageCompute, StageInput, StageLayout } from '../model/stage-compute';
import { StageRuntime, stageSpecOf } from './stage-runtime';
import { ephemeralIdentity, type Identity } from '../net/identity';
import { payloadSigningText } from '../protocol/digest-signing';
import { digestBytes } from './step-trace';
import { digestFloats } from '../model/digest';

const run: RunConfig = {
  runId: 'fake',
  model: { n_layer: 2, n_head: 2, n_embd: 8, vocab_size: 16, block_size: 4 },
  stages: [
    { layerStart: 0, layerEnd: 1 },
    { layerStart: 1, layerEnd: 2 },
  ],
  B: 1,
  T: 4,
  M: 2,
  steps: 1,
  schedule: { lr: 1e-3, minLr: 1e-4, warmup: 0, decaySteps: 1 },
  optimizer: { ...DEFAULT_OPTIMIZER, lr: 1e-3 },
  seed: 1,
};

/** Records calls; every array result is zeros of the right size. */
class FakeCompute implements StageCompute {
  readonly calls: string[] = [];
  readonly layout: StageLayout;
  constructor(stage: number) {
    const spec = stageSpecOf(run, stage);
    const first = spec.range.layerStart === 0;
    const last = spec.range.layerEnd === run.model.n_layer;
    this.layout = {
      total: 64,
      decayEnd: 32,
      slots: [{ spec: { name: 'transformer.wte.weight', shape: [16, 4] }, offset: 0, size: 64 }],
      first,
      last,
      slotCount: spec.slots,
      count: 64,
      inWidth: first ? 0 : run.model.n_embd,
      outWidth: last ? 0 : run.model.n_embd,
    };
  }
  /** An fp32 payload of one microbatch's activations (raw f32 bytes). */
  private acts() {
    return new Uint8Array(run.B * run.T * run.model.n_embd * 4);
  }
  async load() {
    this.calls.push('load');
  }
  async init(seed: number) {
    this.calls.push(`init ${seed}`);
  }
  async forward(slot: number, input: StageInput) {
    this.calls.push(`forward ${slot} ${'tokens' in input ? 'tokens' : 'acts'}`);
    return this.acts();
  }
  async forwardBackward(slot: number) {
    this.calls.push(`forwardBackward ${slot}`);
    return { loss: 2.5, gradIn: this.layout.first ? null : this.acts() };
  }
  async backward(slot: number) {
    this.calls.push(`backward ${slot}`);
    return this.layout.first ? null : this.acts();
  }
  async zeroGrads() {
    this.calls.push('zeroGrads');
  }
  async readFlat(which: FlatWhich, range?: FlatRange) {
    this.calls.push(`readFlat ${which}${range ? ` ${range.offset}+${range.count}` : ''}`);
    return new Float32Array(range ? range.count : this.layout.total);
  }
  async writeFlat(which: FlatWhich, data: Float32Array, offset?: number) {
    this.calls.push(`writeFlat ${which}${offset === undefined ? '' : ` at ${offset}`}`);
    // As a Worker's compute may: the array is transferred, so the caller's copy is detached from here on.
    structuredClone(data.buffer, { transfer: [data.buffer] });
  }
  async gradSumSquares(opts: { excludeTiedWte?: boolean } = {}) {
    this.calls.push(`gradSumSquares${opts.excludeTiedWte ? ' exclude wte' : ''}`);
    return 1;
  }
  async optimizerStep(step: number, _h: unknown, opts: { digest?: boolean }) {
    this.calls.push(`optimizerStep ${step}`);
    return opts.digest ? digestFloats(new Float32Array(this.layout.total)) : null;
  }
  async paramsDigest() {
    this.calls.push('paramsDigest');
    return digestFloats(new Float32Array(this.layout.total));
  }
  async dispose() {}
}

/** The runtime's own identity (it signs what it sends) and its neighbour 'first''s, which signs its activations. */
let me: Identity;
let first: Identity;
beforeAll(async () => {
  me = await ephemeralIdentity();
  first = await ephemeralIdentity();
});

const noNet = { connect: (): Promise<Transport> => Promise.reject(new Error('no network')), onConnection: () => () => undefined };

/** An fp32 activation payload from 'first' to 'last' (u8 with the codec in the meta), signed by `signer`. */
async function tensor(
  kind: 'act',
  meta: { step: number; attempt: number; mb: number; origin: string; route: string },
  codec: string | null = 'fp32',
  signer: Identity = first,
): Promise<IncomingTensor> {
  const n = run.B * run.T;
  const bytes = new Uint8Array(n * run.model.n_embd * 4);
  const digest = await digestBytes(bytes);
  const sig = await signer.sign(
    payloadSigningText({ runId: run.runId, step: meta.step, attempt: meta.attempt, mb: meta.mb, kind, to: 'last' }, digest),
  );
  return { msgId: 1, kind, dtype: 'u8', shape: [bytes.length], meta: { ...meta, ...(codec === null ? {} : { codec }), digest, sig }, bytes };
}

function lastStage() {
  return stageRuntime(1);
}

function stageRuntime(stage: 0 | 1, r: RunConfig = run) {
  const sent: ControlMessage[] = [];
  const compute = new FakeCompute(stage);
  const errors: Error[] = [];
  const sr = new StageRuntime({
    compute,
    run: r,
    stage,
    peerId: stage === 0 ? 'first' : 'last',
    // The last stage samples each microbatch's targets from the run's tokens (they never travel).
    tokens: Uint32Array.from({ length: 64 }, (_, i) => i % run.model.vocab_size),
    links: new Links(noNet, () => undefined),
    signer: me,
    keyOf: (id) => (id === 'first' && stage === 1 ? first.publicKey : undefined),
    send: (m) => sent.push(m),
    onError: (e) => errors.push(e),
  });
  return { sr, sent, compute, errors, events: new Emitter() };
}

/**
 * A 2-stage first stage through step 0's reduce: its step-begin, the last stage's tied wte gradient (0.5 everywhere;
 * this stage's own slot reads as zeros), step-reduce; resolves once its grad-sumsq is out (a validating run signs its
 * trace with the contribution's digest first: real crypto, so real time) and the chain is idle.
 */
async function firstStageReduce(sr: StageRuntime, sent: ControlMessage[]): Promise<void> {
  const members = [['first'], ['last']];
  sr.onControl({ type: 'step-begin', step: 0, attempt: 0, owners: [0, 0], members });
  const theirs = new Float32Array(64).fill(0.5);
  sr.onTensor('last', {
    msgId: 9,
    kind: 'tie',
    dtype: 'f32',
    shape: [64],
    meta: { step: 0, attempt: 0, mb: -1 },
    bytes: new Uint8Array(theirs.buffer),
  });
  sr.onControl({ type: 'step-reduce', step: 0, attempt: 0, members });
  for (let i = 0; i < 200 && !sent.some((m) => m.type === 'grad-sumsq'); i++) await new Promise((r) => setTimeout(r, 10));
  await settle(sr);
}

async function settle(sr: StageRuntime): Promise<void> {
  for (let i = 0; i < 5; i++) await sr.idle();
}

describe('StageRuntime with a fake StageCompute', () => {
  it('initialises the stage from the run seed through the compute', async () => {
    const { sr, compute } = lastStage();
    await sr.idle();
    expect(compute.calls[0]).toBe(`init ${run.seed}`);
    expect(sr.stage.slotCount).toBe(2);
  });

  it('keeps pipeline tensors that overtake their step-begin (same attempt) and computes them after it', async () => {
    const { sr, sent, compute, errors } = lastStage();
    const members = [['first'], ['last']];
    // Attempt 1 of step 0: its activations arrive before its step-begin (WebRTC overtakes the signaling path).
    const meta = { step: 0, attempt: 1, mb: 0, origin: 'first', route: 'first' };
    sr.onTensor('first', await tensor('act', meta));
    sr.onControl({ type: 'step-begin', step: 0, attempt: 1, owners: [0, 0], members });
    await settle(sr);
    expect(errors).toEqual([]);
    expect(compute.calls).toContain('forwardBackward 0');
    expect(sent).toContainEqual({ type: 'mb-loss', step: 0, attempt: 1, mb: 0, loss: 2.5 });
  });

  it('drops tensors of an attempt older than the current one', async () => {
    const { sr, sent } = lastStage();
    sr.onControl({ type: 'step-begin', step: 0, attempt: 1, owners: [0, 0], members: [['first'], ['last']] });
    const old = { step: 0, attempt: 0, mb: 1, origin: 'first', route: 'first' };
    sr.onTensor('first', await tensor('act', old));
    await settle(sr);
    expect(sent.filter((m) => m.type === 'mb-loss')).toEqual([]);
  });

  it("refuses an activation payload of another codec than the run's, or not a u8 payload, and reports its sender", async () => {
    const { sr, sent, compute, errors } = lastStage();
    sr.onControl({ type: 'step-begin', step: 0, attempt: 0, owners: [0, 0], members: [['first'], ['last']] });
    const meta = { step: 0, attempt: 0, mb: 0, origin: 'first', route: 'first' };
    sr.onTensor('first', await tensor('act', meta, 'int8.b64.nearest'));
    const f32 = await tensor('act', { ...meta, mb: 1 });
    sr.onTensor('first', { ...f32, dtype: 'f32', shape: [f32.bytes.byteLength / 4] });
    sr.onTensor('first', await tensor('act', { ...meta, mb: 0 }, null));
    await settle(sr);
    expect(errors).toEqual([]);
    expect(compute.calls.filter((c) => c.startsWith('forward'))).toEqual([]);
    expect(sent.filter((m) => m.type === 'peer-report')).toEqual([
      { type: 'peer-report', peer: 'first', reason: "act of microbatch 0 of step 0:0: codec int8.b64.nearest, expected the run's fp32" },
      { type: 'peer-report', peer: 'first', reason: 'act of microbatch 1 of step 0:0: dtype f32, expected u8 (a codec payload)' },
      { type: 'peer-report', peer: 'first', reason: "act of microbatch 0 of step 0:0: codec (none), expected the run's fp32" },
    ]);
  });

  it('refuses a payload not signed by its sender for this slot (another key, another microbatch) and reports it', async () => {
    const { sr, sent, compute, errors } = lastStage();
    sr.onControl({ type: 'step-begin', step: 0, attempt: 0, owners: [0, 0], members: [['first'], ['last']] });
    const meta = { step: 0, attempt: 0, mb: 0, origin: 'first', route: 'first' };
    sr.onTensor('first', await tensor('act', meta, 'fp32', me));
    const other = await tensor('act', { ...meta, mb: 1 });
    sr.onTensor('first', { ...other, meta: { ...other.meta, mb: 0 } });
    await settle(sr);
    expect(errors).toEqual([]);
    expect(compute.calls.filter((c) => c.startsWith('forward'))).toEqual([]);
    expect(sent.filter((m) => m.type === 'peer-report')).toEqual([
      { type: 'peer-report', peer: 'first', reason: 'act from first: bad signature' },
      { type: 'peer-report', peer: 'first', reason: 'act from first: bad signature' },
    ]);
    expect(sr.trace.recv).toEqual([]);
  });

  it('reduce + apply go through the compute: the tied wte slot read and written back (one replica: nothing else crosses), sum of squares, optimizer step with the digest read', async () => {
    const { sr, sent, compute } = lastStage();
    const members = [['first'], ['last']];
    sr.onControl({ type: 'step-begin', step: 0, attempt: 0, owners: [0, 0], members });
    // A 2-stage run: the last stage exchanges the tied wte gradient with the first; fake it arriving.
    sr.onTensor('first', { msgId: 9, kind: 'tie', dtype: 'f32', shape: [64], meta: { step: 0, attempt: 0, mb: -1 }, bytes: new Uint8Array(64 * 4) });
    sr.onControl({ type: 'step-reduce', step: 0, attempt: 0, members });
    sr.onControl({ type: 'step-apply', step: 0, attempt: 0, scale: 1, lr: 1e-3 });
    for (let i = 0; i < 20 && !sent.some((m) => m.type === 'step-done'); i++) await settle(sr);
    const wte = compute.layout.slots.find((x) => x.spec.name === 'transformer.wte.weight');
    if (!wte) throw new Error('the last stage of a tied model holds wte');
    // The sum of squares without the tied slot comes back in the round trip that reads the slot.
    expect(compute.calls.filter((c) => /Flat|Squares|optimizer/.test(c))).toEqual([
      `readFlat grads ${wte.offset}+${wte.size}`,
      'gradSumSquares exclude wte',
      `writeFlat grads at ${wte.offset}`,
      'optimizerStep 1',
    ]);
    // The last stage's share leaves the tied slot out: the first stage counts it.
    expect(sent.find((m) => m.type === 'grad-sumsq')).toMatchObject({ stage: 1, value: 1 });
    expect(sent.find((m) => m.type === 'step-done')).toMatchObject({ step: 0, stage: 1, digest: digestFloats(new Float32Array(64)) });
    expect(sr.stepsDone).toBe(1);
  });

  it("the first stage's share of the norm counts the tied slot once, summed with the last stage's, and goes out before the slot is written back", async () => {
    const { sr, sent, compute, errors } = stageRuntime(0);
    let sumsqBeforeWrite = false;
    const write = compute.writeFlat.bind(compute);
    compute.writeFlat = async (which, data, offset) => {
      sumsqBeforeWrite = sent.some((m) => m.type === 'grad-sumsq');
      return write(which, data, offset);
    };
    await firstStageReduce(sr, sent);
    expect(errors).toEqual([]);
    expect(compute.calls.filter((c) => /Flat|Squares/.test(c))).toEqual([
      'readFlat grads 0+64',
      'gradSumSquares exclude wte',
      'writeFlat grads at 0',
    ]);
    // 1 from the GPU (the fake's, without the slot) + 64 x 0.5^2 from the summed slot.
    expect(sent.find((m) => m.type === 'grad-sumsq')).toMatchObject({ stage: 0, value: 1 + 64 * 0.25 });
    expect(sumsqBeforeWrite).toBe(true);
  });

  it("a validating run's first stage (the whole gradient on the host, written back to a compute that detaches it) counts the summed tied slot too", async () => {
    const { sr, sent, compute, errors } = stageRuntime(0, { ...run, trust: { ...TRUST_NONE, validationRate: 1 } });
    await firstStageReduce(sr, sent);
    expect(errors).toEqual([]);
    // The whole gradient read and written back, its squares without the tied slot after that.
    expect(compute.calls.filter((c) => /Flat|Squares/.test(c))).toEqual(['readFlat grads', 'writeFlat grads', 'gradSumSquares exclude wte']);
    // 1 from the GPU (the fake's, without the slot) + 64 x 0.5^2 from the summed slot.
    expect(sent.find((m) => m.type === 'grad-sumsq')).toMatchObject({ stage: 0, value: 1 + 64 * 0.25 });
  });
});
