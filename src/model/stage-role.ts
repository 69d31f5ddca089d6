// What part of the model a pipeline stage holds, as a type. A stage is blocks [layerStart, layerEnd); the stage that
// starts at block 0 also owns the embeddings and reads tokens, the one that ends at n_layer also owns ln_f, the tied
// lm_head and the loss. One peer holding the whole model is both: 'single'.
import { validateConfig, type GPTConfig } from './config';

export interface StageRange {
  layerStart: number;
  layerEnd: number;
}

export type StageRole = 'first' | 'middle' | 'last' | 'single';

/** Throws unless `r` is a non-empty range of blocks of `config`. */
export function validateRange(config: GPTConfig, r: StageRange): void {
  if (
    !Number.isInteger(r.layerStart) ||
    !Number.isInteger(r.layerEnd) ||
    r.layerStart < 0 ||
    r.layerEnd > config.n_layer ||
    r.layerStart >= r.layerEnd
  ) {
    throw new Error(`stage layers [${r.layerStart}, ${r.layerEnd}) are not a non-empty range inside [0, ${config.n_layer})`);
  }
}

/** The role of stage `r` of `config` (validated). */
export function stageRole(config: GPTConfig, r: StageRange): StageRole {
  validateRange(validateConfig(config), r);
  const first = r.layerStart === 0;
  const last = r.layerEnd === config.n_layer;
  return first ? (last ? 'single' : 'first') : last ? 'last' : 'middle';
}

/** Whether a stage of this role embeds tokens (owns wte + wpe, has no activation input). */
export function embedsTokens(role: StageRole): role is 'first' | 'single' {
  return role === 'first' || role === 'single';
}

/** Whether a stage of this role ends in the head (ln_f, the tied lm_head, the loss). */
export function hasHead(role: StageRole): role is 'last' | 'single' {
  return role === 'last' || role === 'single';
}
