// Typed handles to a stage's parameters (llm.c's ParameterTensors, split by the part of the model that owns them),
// resolved once when the stage is built: every field is a shaped view into the ParamStore's flat buffer, so the
// launches read `w.qkvw` instead of looking a string up per launch. Each part is resolved twice, over the
// parameters and over their gradients, which share the layout.
import type { Tensor } from '../gpu/tensor';
import { bottleneckNames } from './bottleneck-config';
import { BLOCK_PARAMS, blockParamName, LNF_B, LNF_W, WPE, WTE, type BlockParamKey } from './config';
import type { ParamStore } from './params';

/** One transformer block: ln1w [C], ln1b, qkvw [C,3C], qkvb, attprojw [C,C], attprojb, ln2w, ln2b, fcw [C,4C], fcb,
 *  fcprojw [4C,C], fcprojb (BLOCK_PARAMS). */
export type LayerParams = Readonly<Record<BlockParamKey, Tensor>>;

/** The first stage's embeddings: wte [V,C], wpe [block_size,C]. */
export interface EmbeddingParams {
  readonly wte: Tensor;
  readonly wpe: Tensor;
}

/** The last stage's head: ln_f [C] and the lm_head, tied to wte [V,C] (its own copy unless the stage is single). */
export interface HeadParams {
  readonly lnfw: Tensor;
  readonly lnfb: Tensor;
  readonly wte: Tensor;
}

/** One bottleneck projection (src/model/bottleneck.ts): a Conv1D weight [in, out] and its bias [out]. */
export interface ProjectionParams {
  readonly w: Tensor;
  readonly b: Tensor;
}

/** A part's parameters and their gradients (same fields, same shapes). */
export interface ParamsAndGrads<T> {
  readonly params: T;
  readonly grads: T;
}

type Side = 'params' | 'grads';

function tensorOf(store: ParamStore, side: Side, name: string): Tensor {
  return side === 'params' ? store.p(name) : store.g(name);
}

function both<T>(resolve: (side: Side) => T): ParamsAndGrads<T> {
  return { params: resolve('params'), grads: resolve('grads') };
}

export function layerParams(store: ParamStore, l: number): ParamsAndGrads<LayerParams> {
  return both((side) => {
    const out = {} as Record<BlockParamKey, Tensor>; // filled from the same table the keys come from
    for (const b of BLOCK_PARAMS) out[b.key] = tensorOf(store, side, blockParamName(l, b.hf));
    return out;
  });
}

export function embeddingParams(store: ParamStore): ParamsAndGrads<EmbeddingParams> {
  return both((side) => ({ wte: tensorOf(store, side, WTE), wpe: tensorOf(store, side, WPE) }));
}

export function headParams(store: ParamStore): ParamsAndGrads<HeadParams> {
  return both((side) => ({ lnfw: tensorOf(store, side, LNF_W), lnfb: tensorOf(store, side, LNF_B), wte: tensorOf(store, side, WTE) }));
}

/** The down-projection of the boundary after `l` blocks: weight [C, k], bias [k]. */
export function bottleneckDownParams(store: ParamStore, l: number): ParamsAndGrads<ProjectionParams> {
  const n = bottleneckNames(l);
  return both((side) => ({ w: tensorOf(store, side, n.downW), b: tensorOf(store, side, n.downB) }));
}

/** The up-projection of the boundary after `l` blocks: weight [k, C], bias [C]. */
export function bottleneckUpParams(store: ParamStore, l: number): ParamsAndGrads<ProjectionParams> {
  const n = bottleneckNames(l);
  return both((side) => ({ w: tensorOf(store, side, n.upW), b: tensorOf(store, side, n.upB) }));
}
