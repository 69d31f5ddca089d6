// The run's flags for `tabswarm coordinator` and `tabswarm demo`: one flag per run-builder option
// (src/coordinator/run-builder.ts), same name, same defaults.
import type { RunConfig } from '../protocol/run-config';
import {
  buildRun,
  NUMERIC_RUN_OPTIONS,
  readRunOptions,
  RUN_DEFAULTS,
  RunBuildError,
  TEXT_RUN_OPTIONS,
  type RunDataset,
  type RunOptionName,
} from '../coordinator/run-builder';
import { DEFAULT_COMPRESS, formatCompress } from '../coordinator/compress-option';
import { str, UsageError } from './args';
import { dataFlagOptions, dataFlagsHelp } from './swarm-common';

type FlagOptions = Record<RunOptionName | keyof typeof dataFlagOptions, { type: 'string' }>;

export const runFlagOptions: FlagOptions = {
  ...(Object.fromEntries([...NUMERIC_RUN_OPTIONS, ...TEXT_RUN_OPTIONS].map((name) => [name, { type: 'string' }])) as Record<
    RunOptionName,
    { type: 'string' }
  >),
  ...dataFlagOptions,
};

const D = RUN_DEFAULTS;
/** 3e-3 rather than 0.003: as a person writes a learning rate. */
const fmt = (x: number) => (x !== 0 && Math.abs(x) < 0.01 ? x.toExponential() : String(x));

export const runFlagsHelp = `  --stages ${D.stages} --steps ${D.steps} --microbatches ${D.microbatches} (M) --batch-size ${D['batch-size']} (B, sequences per microbatch)
  --n-layer ${D['n-layer']} --n-head ${D['n-head']} --n-embd ${D['n-embd']} --block-size ${D['block-size']}       model (T = block size)
  --lr ${fmt(D.lr)} --min-lr ${fmt(D['min-lr'])} --warmup ${D.warmup} --weight-decay ${fmt(D['weight-decay'])} --beta2 ${fmt(D.beta2)} --grad-clip ${fmt(D['grad-clip'])} --seed ${D.seed}
  --slots N (in-flight microbatches per stage)  --run-id ID
${dataFlagsHelp}
  --compress none     wire compression: none (fp32), default (${formatCompress(DEFAULT_COMPRESS)}),
                      a JSON CompressSpec, or e.g. act=int8:64,grad=int8:64,bottleneck=16p,sync=local:H=50:int8 (README)
  --aggregation sum   how a stage's replicas combine gradients: sum, trimmed-mean or centered-clip (docs/trust.md)
  --validation-rate 0 --strikes 3   fraction of contributions validators recompute; strikes that evict a peer`;

/** The run the flags describe (defaults for the rest), over a dataset (a number: the default corpus' vocabulary). */
export function runFromFlags(values: Record<string, unknown>, vocab: number | RunDataset): RunConfig {
  const flag = (name: RunOptionName) => `--${name}`;
  try {
    return buildRun(
      readRunOptions((name) => str(values, name), flag),
      vocab,
      flag,
    );
  } catch (e) {
    if (e instanceof RunBuildError) throw new UsageError(e.message);
    throw e;
  }
}
