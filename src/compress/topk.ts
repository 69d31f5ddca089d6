// top-k: the k = ceil(fraction * n) largest |x| with their indices, exactly (f32 values), ties to the lower index,
// selected on the GPU (shaders/topk.wgsl). For replica sync with error feedback (error-feedback.ts keeps what was
// not sent). The encoder refuses a non-finite input: NaN and inf sort above every finite magnitude, so one is always
// among the selected values if the input holds any.
import { CodecBase } from './codec-base';
import type { Runtime } from '../gpu/runtime';
import { type Tensor } from '../gpu/tensor';
import { CodecError } from './codec-error';
import { checkKey } from './rounding-key';
import type { CodecSpec } from './spec';
import { topkScatter, topkScratchSizes, topkSelect, type TopkScratch } from './topk-kernels';
import type { RoundingKey } from './types';
import { checkPayload } from './validate';
import { bodyLayout, describeCodec } from './wire-format';

export type TopkSpec = Extract<CodecSpec, { kind: 'topk' }>;

export class TopkCodec extends CodecBase<TopkSpec> {
  constructor(rt: Runtime, spec: TopkSpec) {
    super(rt, spec);
  }

  async encode(rt: Runtime, src: Tensor, n: number, key: RoundingKey): Promise<Uint8Array> {
    this.prepare(rt, src, n, 'src');
    checkKey(key, this.name);
    const { k, words } = bodyLayout(this.spec, n);
    const pairs = this.scratch.get('encoded', words);
    topkSelect(rt, src, pairs, this.selection(n), n, k);
    const body = await rt.readU32(pairs, words);
    const f32 = new Float32Array(body.buffer, body.byteOffset + 4 * k, k);
    for (let j = 0; j < k; j++) {
      if (!Number.isFinite(f32[j])) {
        throw new CodecError(
          'topk',
          `input holds a non-finite value (${f32[j]} at index ${body[j]}); refusing to encode it`,
          describeCodec(this.spec),
        );
      }
    }
    return this.payloadOf(n, body, words);
  }

  /** t keeps its k largest magnitudes, every other element becomes +0. */
  roundTrip(rt: Runtime, t: Tensor, n: number, key: RoundingKey): void {
    this.prepare(rt, t, n, 't');
    checkKey(key, this.name);
    const { k, words } = bodyLayout(this.spec, n);
    const pairs = this.scratch.get('encoded', words);
    topkSelect(rt, t, pairs, this.selection(n), n, k);
    topkScatter(rt, pairs, t, n, k, false);
  }

  private selection(n: number): TopkScratch {
    const sizes = topkScratchSizes(n);
    return {
      state: this.scratch.get('state', sizes.state),
      counts: this.scratch.get('counts', sizes.counts),
      plan: this.scratch.get('plan', sizes.plan),
    };
  }

  protected decodeInto(rt: Runtime, payload: Uint8Array, out: Tensor, n: number, acc: boolean): void {
    this.prepare(rt, out, n, acc ? 'acc' : 'out');
    const { body, layout } = checkPayload(this.spec, payload, n);
    const pairs = this.scratch.get('received', body.length);
    rt.write(pairs, body);
    topkScatter(rt, pairs, out, n, layout.k, acc);
  }
}
