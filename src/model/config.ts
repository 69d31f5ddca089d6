// GPT-2 configuration and the parameter list in Hugging Face `GPT2LMHeadModel` names and layouts.
// Linear weights are Conv1D `[in, out]`; lm_head is tied to transformer.wte.weight and never stored.

export interface GPTConfig {
  n_layer: number;
  n_head: number;
  n_embd: number;
  vocab_size: number;
  block_size: number;
}

export interface ParamSpec {
  name: string;
  shape: number[];
  /** AdamW weight decay applies to matrices and embeddings, not to biases and LayerNorm gains (nanoGPT). */
  decay: boolean;
  /** Which layer owns it: -1 embeddings, n_layer the final LayerNorm, else the block index. */
  layer: number;
}

/** Names of the parameters outside the blocks. */
export const WTE = 'transformer.wte.weight';
export const WPE = 'transformer.wpe.weight';
export const LNF_W = 'transformer.ln_f.weight';
export const LNF_B = 'transformer.ln_f.bias';

export function validateConfig(c: GPTConfig): GPTConfig {
  for (const k of ['n_layer', 'n_head', 'n_embd', 'vocab_size', 'block_size'] as const) {
    const v = c[k];
    if (!Number.isInteger(v) || v < 1) throw new Error(`config: ${k} must be a positive integer, got ${v}`);
  }
  if (c.n_embd % c.n_head !== 0) throw new Error(`config: n_embd ${c.n_embd} is not divisible by n_head ${c.n_head}`);
  return c;
}

/** Parameters of blocks [0, n_layer) plus embeddings and ln_f, in a fixed order (the checkpoint's order). */
export function gpt2ParamSpecs(c: GPTConfig): ParamSpec[] {
  const C = c.n_embd;
  const specs: ParamSpec[] = [
    { name: WTE, shape: [c.vocab_size, C], decay: true, layer: -1 },
    { name: WPE, shape: [c.block_size, C], decay: true, layer: -1 },
  ];
  for (let l = 0; l < c.n_layer; l++) specs.push(...blockParamSpecs(c, l));
  specs.push({ name: LNF_W, shape: [C], decay: false, layer: c.n_layer }, { name: LNF_B, shape: [C], decay: false, layer: c.n_layer });
  return specs;
}

/**
 * One transformer block's parameters, in checkpoint order: llm.c's field name (the handle a launch uses, see
 * src/model/param-handles.ts), the Hugging Face name under `transformer.h.<l>.`, the shape for n_embd = C, and
 * whether AdamW decays it. The one table both the parameter list and the per-layer handles are built from.
 */
export const BLOCK_PARAMS = [
  { key: 'ln1w', hf: 'ln_1.weight', shape: (C: number) => [C], decay: false },
  { key: 'ln1b', hf: 'ln_1.bias', shape: (C: number) => [C], decay: false },
  { key: 'qkvw', hf: 'attn.c_attn.weight', shape: (C: number) => [C, 3 * C], decay: true },
  { key: 'qkvb', hf: 'attn.c_attn.bias', shape: (C: number) => [3 * C], decay: false },
  { key: 'attprojw', hf: 'attn.c_proj.weight', shape: (C: number) => [C, C], decay: true },
  { key: 'attprojb', hf: 'attn.c_proj.bias', shape: (C: number) => [C], decay: false },
  { key: 'ln2w', hf: 'ln_2.weight', shape: (C: number) => [C], decay: false },
  { key: 'ln2b', hf: 'ln_2.bias', shape: (C: number) => [C], decay: false },
  { key: 'fcw', hf: 'mlp.c_fc.weight', shape: (C: number) => [C, 4 * C], decay: true },
  { key: 'fcb', hf: 'mlp.c_fc.bias', shape: (C: number) => [4 * C], decay: false },
  { key: 'fcprojw', hf: 'mlp.c_proj.weight', shape: (C: number) => [4 * C, C], decay: true },
  { key: 'fcprojb', hf: 'mlp.c_proj.bias', shape: (C: number) => [C], decay: false },
] as const;

export type BlockParamKey = (typeof BLOCK_PARAMS)[number]['key'];

/** The Hugging Face name of block `l`'s parameter `hf` (a BLOCK_PARAMS entry's suffix). */
export function blockParamName(l: number, hf: string): string {
  return `transformer.h.${l}.${hf}`;
}

export function blockParamSpecs(c: GPTConfig, l: number): ParamSpec[] {
  return BLOCK_PARAMS.map((b) => ({ name: blockParamName(l, b.hf), shape: b.shape(c.n_embd), decay: b.decay, layer: l }));
}

export function countParams(c: GPTConfig): number {
  return gpt2ParamSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** GPT-2 initialisation (std 0.02; residual projections scaled by 1/sqrt(2*n_layer); LN gains 1, biases 0). */
export function initStd(name: string, c: GPTConfig): number | 'ones' | 'zeros' {
  if (name.endsWith('ln_1.weight') || name.endsWith('ln_2.weight') || name.endsWith('ln_f.weight')) return 'ones';
  if (name.endsWith('.bias')) return 'zeros';
  if (name.endsWith('attn.c_proj.weight') || name.endsWith('mlp.c_proj.weight')) return 0.02 / Math.sqrt(2 * c.n_layer);
  return 0.02;
}
