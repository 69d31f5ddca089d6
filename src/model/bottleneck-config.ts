// The learned bottleneck at pipeline-stage boundaries, as model configuration: where the boundaries sit and how
// wide the narrow tensor is. At a boundary after `l` blocks (between block l-1 and block l) the stage ending at l
// ends in a down-projection z = x @ Wd + bd ([N, C] -> [N, k]) and the stage starting at l begins with an
// up-projection x' = z @ Wu + bu ([N, k] -> [N, C]); with `passthrough` the first k residual channels also pass
// straight through (z += x[:, :k], x'[:, :k] += z). The weights are ordinary trained parameters with names of their
// own (Conv1D [in, out] layout like the blocks), saved in checkpoints; HF GPT2LMHeadModel does not know them.
import { z } from 'zod';
import type { BottleneckSpec } from '../compress/spec';
import { gpt2ParamSpecs, validateConfig, type GPTConfig, type ParamSpec } from './config';

export const bottleneckConfigSchema = z.object({
  /** Channels that cross the boundary (k <= n_embd). */
  width: z.number().int().positive(),
  /** Add the first `width` residual channels straight through the projections. */
  passthrough: z.boolean(),
  /** The boundaries: block counts after which one sits (strictly increasing, each in 1..n_layer-1). */
  after: z.array(z.number().int()),
});
export type BottleneckConfig = z.infer<typeof bottleneckConfigSchema>;

/** Throws unless `b` fits `config` (width <= n_embd, boundaries strictly increasing inside the model). */
export function validateBottleneck(config: GPTConfig, b: BottleneckConfig): BottleneckConfig {
  const parsed = bottleneckConfigSchema.safeParse(b);
  if (!parsed.success) throw new Error(`bottleneck: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const C = config.n_embd;
  if (b.width > C) throw new Error(`bottleneck: width ${b.width} exceeds n_embd ${C}`);
  b.after.forEach((l, i) => {
    if (l < 1 || l >= config.n_layer) throw new Error(`bottleneck: boundary after ${l} blocks is not inside the model (1..${config.n_layer - 1})`);
    if (i > 0 && l <= b.after[i - 1]) throw new Error(`bottleneck: boundaries must be strictly increasing, got [${b.after.join(', ')}]`);
  });
  return b;
}

/** Parameter names of the boundary after `l` blocks. */
export function bottleneckNames(l: number): { downW: string; downB: string; upW: string; upB: string } {
  const p = `bottleneck.${l}.`;
  return { downW: p + 'down.weight', downB: p + 'down.bias', upW: p + 'up.weight', upB: p + 'up.bias' };
}

/** Matches a bottleneck parameter name: [1] the boundary, [2] down | up, [3] weight | bias. */
export const BOTTLENECK_NAME = /^bottleneck\.(\d+)\.(down|up)\.(weight|bias)$/;

/** The down-projection's parameters (owned by the stage that ends at `l`): weight [C, k] decayed, bias [k] not. */
export function bottleneckDownSpecs(config: GPTConfig, b: BottleneckConfig, l: number): ParamSpec[] {
  const n = bottleneckNames(l);
  return [
    { name: n.downW, shape: [config.n_embd, b.width], decay: true, layer: l - 1 },
    { name: n.downB, shape: [b.width], decay: false, layer: l - 1 },
  ];
}

/** The up-projection's parameters (owned by the stage that starts at `l`): weight [k, C] decayed, bias [C] not. */
export function bottleneckUpSpecs(config: GPTConfig, b: BottleneckConfig, l: number): ParamSpec[] {
  const n = bottleneckNames(l);
  return [
    { name: n.upW, shape: [b.width, config.n_embd], decay: true, layer: l },
    { name: n.upB, shape: [config.n_embd], decay: false, layer: l },
  ];
}

/** Every bottleneck parameter, boundary by boundary (down then up). */
export function bottleneckParamSpecs(config: GPTConfig, b: BottleneckConfig): ParamSpec[] {
  validateBottleneck(config, b);
  return b.after.flatMap((l) => [...bottleneckDownSpecs(config, b, l), ...bottleneckUpSpecs(config, b, l)]);
}

/** The whole model's parameters: GPT-2's (gpt2ParamSpecs, HF names) then the bottlenecks' (none without one). */
export function modelParamSpecs(config: GPTConfig, b?: BottleneckConfig | null): ParamSpec[] {
  validateConfig(config);
  return b ? [...gpt2ParamSpecs(config), ...bottleneckParamSpecs(config, b)] : gpt2ParamSpecs(config);
}

/** The bottleneck at one stage's own boundaries (its start and end inside the model), or null. */
export function stageBottleneckAt(
  spec: BottleneckSpec | null,
  nLayer: number,
  range: { layerStart: number; layerEnd: number },
): BottleneckConfig | null {
  return bottleneckAt(
    spec,
    [range.layerStart, range.layerEnd].filter((l) => l > 0 && l < nLayer),
  );
}

/** The model's bottleneck for a run's compress spec (`null`: none) at the boundaries of its stage split. */
export function bottleneckAt(spec: BottleneckSpec | null, after: readonly number[]): BottleneckConfig | null {
  return spec && after.length > 0 ? { width: spec.width, passthrough: spec.passthrough, after: [...after] } : null;
}
