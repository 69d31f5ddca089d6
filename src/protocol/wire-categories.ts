// Wire accounting's categories (docs/compression.md): what the bytes a peer sends are for. src/net counts bytes
// per tensor kind and per WIRE_CONTROL / WIRE_LINK; this file maps those keys to the six categories a run reports,
// and says what fp32 without a bottleneck would have sent for the same steps (the counterfactual the "x fewer bytes
// than fp32" ratios divide by). A kind nobody mapped lands in `other`, which tests assert stays zero.
import { z } from 'zod';
import { WIRE_CONTROL, WIRE_LINK } from '../net/wire-meter';
import { stageParamSpecs } from '../model/stage';
import type { RunConfig } from './run-config';

export const WIRE_CATEGORIES = ['activations', 'activation_grads', 'sync', 'state', 'validation', 'control'] as const;
export type WireCategory = (typeof WIRE_CATEGORIES)[number];

const bytes = z.number().nonnegative();

/** Bytes per category; `other`: bytes of a kind no category claims (a bug: it should stay 0). */
export const wireBytesSchema = z.object({
  activations: bytes,
  activation_grads: bytes,
  sync: bytes,
  state: bytes,
  /** Validators' uploads (docs/trust.md); absent from peers of before the trust work = 0. */
  validation: bytes.default(0),
  control: bytes,
  other: bytes,
});
export type WireBytes = z.infer<typeof wireBytesSchema>;

/**
 * The category of each key src/net counts. Tensor kinds: the pipeline's (src/swarm/stage-runtime.ts), the
 * all-reduce's (src/swarm/allreduce.ts ALLREDUCE_KIND), the local-steps sync's (src/swarm/local-sync.ts SYNC_KIND) and the
 * state transfer's (src/swarm/state-transfer.ts STATE_KIND); tests/protocol/wire-categories.test.ts checks these
 * strings against the constants the senders use.
 */
export const WIRE_KEY_CATEGORY: Readonly<Record<string, WireCategory>> = {
  act: 'activations',
  grad: 'activation_grads',
  allreduce: 'sync',
  tie: 'sync',
  'local-sync': 'sync',
  'robust-grad': 'sync',
  'stage-state': 'state',
  vinput: 'validation',
  [WIRE_CONTROL]: 'control',
  [WIRE_LINK]: 'control',
};

export function emptyWireBytes(): WireBytes {
  return { activations: 0, activation_grads: 0, sync: 0, state: 0, validation: 0, control: 0, other: 0 };
}

/** Bytes per key (a WireMeter's take() or snapshot()) -> bytes per category. */
export function wireBytesOf(byKey: Readonly<Record<string, number>>): WireBytes {
  const out = emptyWireBytes();
  for (const [key, n] of Object.entries(byKey)) {
    const cat = Object.hasOwn(WIRE_KEY_CATEGORY, key) ? WIRE_KEY_CATEGORY[key] : 'other';
    out[cat] += n;
  }
  return out;
}

export function addWireBytes(a: WireBytes, b: Partial<WireBytes>): WireBytes {
  return {
    activations: a.activations + (b.activations ?? 0),
    activation_grads: a.activation_grads + (b.activation_grads ?? 0),
    sync: a.sync + (b.sync ?? 0),
    state: a.state + (b.state ?? 0),
    validation: a.validation + (b.validation ?? 0),
    control: a.control + (b.control ?? 0),
    other: a.other + (b.other ?? 0),
  };
}

export function totalWireBytes(w: WireBytes): number {
  return w.activations + w.activation_grads + w.sync + w.state + w.validation + w.control + w.other;
}

/**
 * What today's fp32 wire (no bottleneck, exact per-step all-reduce) sends for ONE step of `run` with these members
 * (peers per stage), payload bytes only (framing excluded; it adds well under 1% at fp32 sizes):
 *   activations      = M * (S-1) * B*T * n_embd * 4            fp32 activations, per microbatch per boundary
 *   activation_grads = M * (S-1) * B*T * n_embd * 4            fp32 gradients back across every boundary
 *   sync             = sum_s 2*(R_s - 1) * N_s * 4             butterfly all-reduce (reduce-scatter + all-gather) of
 *                                                               stage s's N_s fp32 gradients over its R_s replicas
 *                    + (S > 1 ? (R_0 + R_last) * V*C * 4 : 0)  the tied wte gradient, first <-> last stage
 * N_s counts the stage's parameters without any bottleneck. State and control have no compressed variant: the
 * ratio uses the measured bytes for them.
 */
export function fp32StepWireBytes(run: RunConfig, members: readonly (readonly string[])[]): WireBytes {
  const { M, B, T } = run;
  const C = run.model.n_embd;
  const S = run.stages.length;
  const out = emptyWireBytes();
  out.activations = M * (S - 1) * B * T * C * 4;
  out.activation_grads = M * (S - 1) * B * T * C * 4;
  let sync = 0;
  run.stages.forEach((r, s) => {
    const R = members[s]?.length ?? 0;
    if (R < 2) return;
    const n = stageParamSpecs(run.model, r).reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
    sync += 2 * (R - 1) * n * 4;
  });
  if (S > 1) {
    const wte = run.model.vocab_size * C;
    sync += ((members[0]?.length ?? 0) + (members[S - 1]?.length ?? 0)) * wte * 4;
  }
  out.sync = sync;
  return out;
}
