// The codec factory (docs/compression.md "Codec contract"): every peer and the single-peer engine build the same
// codec from the run config's CodecSpec. A codec keeps its GPU scratch on the runtime it was created on.
import type { Runtime } from '../gpu/runtime';
import { BlockwiseCodec } from './blockwise';
import { Fp16Codec } from './fp16';
import { Fp32Codec } from './fp32';
import type { CodecSpec } from './spec';
import { TopkCodec } from './topk';
import type { GpuCodec } from './types';

export { CodecError } from './codec-error';
export { ErrorFeedbackEncoder } from './error-feedback';
export { keyHash } from './rounding-key';
export type { GpuCodec, RoundingKey } from './types';
export { bitsPerValue, describeCodec, payloadBytes, topkCount } from './wire-format';

export function createCodec(rt: Runtime, spec: CodecSpec): GpuCodec {
  switch (spec.kind) {
    case 'fp32':
      return new Fp32Codec(rt);
    case 'fp16':
      return new Fp16Codec(rt);
    case 'int8':
    case 'int4':
      return new BlockwiseCodec(rt, spec);
    case 'topk':
      return new TopkCodec(rt, spec);
  }
}
