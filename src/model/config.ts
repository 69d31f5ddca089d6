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
    { name: 'transformer.wte.weight', shape: [c.vocab_size, C], decay: true, layer: -1 },
    { name: 'transformer.wpe.weight', shape: [c.block_size, C], decay: true, layer: -1 },
  ];
  for (let l = 0; l < c.n_layer; l++) specs.push(...blockParamSpecs(c, l));
  specs.push(
    { name: 'transformer.ln_f.weight', shape: [C], decay: false, layer: c.n_layer },
    { name: 'transformer.ln_f.bias', shape: [C], decay: false, layer: c.n_layer },
  );
  return specs;
}

export function blockParamSpecs(c: GPTConfig, l: number): ParamSpec[] {
  const C = c.n_embd;
  const p = `transformer.h.${l}.`;
  return [
    { name: p + 'ln_1.weight', shape: [C], decay: false, layer: l },
    { name: p + 'ln_1.bias', shape: [C], decay: false, layer: l },
    { name: p + 'attn.c_attn.weight', shape: [C, 3 * C], decay: true, layer: l },
    { name: p + 'attn.c_attn.bias', shape: [3 * C], decay: false, layer: l },
    { name: p + 'attn.c_proj.weight', shape: [C, C], decay: true, layer: l },
    { name: p + 'attn.c_proj.bias', shape: [C], decay: false, layer: l },
    { name: p + 'ln_2.weight', shape: [C], decay: false, layer: l },
    { name: p + 'ln_2.bias', shape: [C], decay: false, layer: l },
    { name: p + 'mlp.c_fc.weight', shape: [C, 4 * C], decay: true, layer: l },
    { name: p + 'mlp.c_fc.bias', shape: [4 * C], decay: false, layer: l },
    { name: p + 'mlp.c_proj.weight', shape: [4 * C, C], decay: true, layer: l },
    { name: p + 'mlp.c_proj.bias', shape: [C], decay: false, layer: l },
  ];
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
