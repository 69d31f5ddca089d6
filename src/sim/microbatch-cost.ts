// What one microbatch costs in the simulator, from the engine's and the codecs' own figures (no assumed ratios):
//   flopsPerLayer   forward + backward FLOPs of ONE transformer block over B sequences of T tokens, as the
//                   contribution ledger counts them (src/model/flops.ts stageMicrobatchFlops: 2·N·12·C² for the
//                   matmuls + 4·B·T²·C for attention, backward = 2 x forward). The embedding and the tied head are
//                   not a block: a stage that holds the head does C·V more weights' work (see headFlops).
//   activationBytes the payload of one microbatch's activations across one stage boundary: B·T values per channel
//                   that crosses it (the bottleneck width with a bottleneck, else n_embd), encoded by the run's
//                   `act` codec. Exactly what src/model/stage-wire.ts sends: fp32 is the raw f32 bytes without a
//                   header, every other codec the wire format of src/compress/wire-format.ts (payloadBytes: header,
//                   block scales, packed codes). Transport framing (chunk headers, < 1% at these sizes) is not in it.
//   gradBytes       the same for the gradient travelling back, with the `grad` codec.
//   reduceBytesPerParam  the replica sync's bytes per parameter per step (below).
// The `--compress` text is read by the coordinator's own parser, `default` fitted to the model as the run builder
// does (src/coordinator/run-builder.ts), so a spec the real coordinator refuses is refused here too.
import { checkCompressForModel, defaultCompressFor, parseCompressOption } from '../coordinator/compress-option';
import type { CodecSpec, CompressSpec } from '../compress/spec';
import { payloadBytes } from '../compress/wire-format';
import { stageMicrobatchFlops } from '../model/flops';
import type { MicrobatchCost, Scenario } from './types';

/** The run's CompressSpec for this scenario, exactly as `tabswarm coordinator --compress` would build it. */
export function scenarioCompress(scenario: Pick<Scenario, 'compress' | 'stages' | 'model'>): CompressSpec {
  const c =
    scenario.compress.trim() === 'default' ? defaultCompressFor(scenario.model.n_embd, scenario.stages) : parseCompressOption(scenario.compress);
  checkCompressForModel(c, scenario.model.n_embd, scenario.stages);
  return c;
}

/** Bytes of n values on a stage boundary under `spec` (fp32: raw, no header, as stage-wire's fp32Codec). */
export function boundaryPayloadBytes(spec: CodecSpec, n: number): number {
  return spec.kind === 'fp32' ? 4 * n : payloadBytes(spec, n);
}

/** Forward + backward FLOPs of one block over one microbatch (the engine's accounting, src/model/flops.ts). */
export function layerFlops(scenario: Pick<Scenario, 'model' | 'B'>): number {
  const m = scenario.model;
  // A range of one block that is not the last stage, so no head is counted: with a 1-layer model, the same widths
  // with a second layer behind it (a block's FLOPs do not depend on how many follow it).
  const model = { ...m, n_layer: Math.max(2, m.n_layer) };
  const f = stageMicrobatchFlops(model, { layerStart: 0, layerEnd: 1 }, scenario.B, m.block_size);
  return Number(f.forward + f.backward);
}

/** Forward + backward FLOPs of the tied head over one microbatch (2·N·C·V forward), which the last stage adds. */
export function headFlops(scenario: Pick<Scenario, 'model' | 'B'>): number {
  const m = scenario.model;
  const forward = 2 * scenario.B * m.block_size * m.n_embd * m.vocab_size;
  return 3 * forward;
}

/**
 * Bytes per parameter per step that a stage's replica sync puts on the wire, under the scenario's `sync`:
 *   per-step  the exact fp32 all-reduce: 4 bytes per parameter (each butterfly phase moves the fp32 vector's share);
 *   local     every H steps one payload of the sync codec per parameter vector (src/compress/wire-format.ts, e.g.
 *             int4 blockwise: half a byte + a 4-byte scale per block), so payloadBytes(codec, n) / n / H per step.
 * `n` is the vector's length (headers and top-k's indices depend on it): by default one block's 12·C² weights.
 */
export function reduceBytesPerParam(scenario: Pick<Scenario, 'compress' | 'stages' | 'model'>, n = 12 * scenario.model.n_embd ** 2): number {
  const c = scenarioCompress(scenario);
  if (c.sync.mode === 'per-step') return 4;
  return payloadBytes(c.sync.codec, n) / n / c.sync.H;
}

export function microbatchCost(scenario: Scenario): MicrobatchCost {
  const c = scenarioCompress(scenario);
  const width = c.bottleneck ? c.bottleneck.width : scenario.model.n_embd;
  const n = scenario.B * scenario.model.block_size * width;
  return {
    flopsPerLayer: layerFlops(scenario),
    activationBytes: boundaryPayloadBytes(c.act, n),
    gradBytes: boundaryPayloadBytes(c.grad, n),
    reduceBytesPerParam: reduceBytesPerParam(scenario),
  };
}
