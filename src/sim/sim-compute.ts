// What a simulated peer "computes": no tensors, but digests that are deterministic functions of what the real
// computation depends on (run, step, attempt, stage, microbatch, the inputs' digests, the weights' digest), so
// neighbours' traces agree, a validator's replay reproduces an honest worker's outputs exactly, and an adversary
// (which computes something else) is found out by the coordinator's real validation code.
import { hashKeys } from '../model/data';

/** A string as a u32 (FNV-1a), for hashKeys. */
function strKey(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** 32 hex chars (the digest format of step-trace, src/swarm/step-trace.ts) of a tuple. */
export function digestOf(keys: readonly (number | string)[]): string {
  const nums = keys.map((k) => (typeof k === 'number' ? k : strKey(k)));
  let out = '';
  for (let i = 0; i < 4; i++)
    out += hashKeys([0xd16e57 + i, ...nums])
      .toString(16)
      .padStart(8, '0');
  return out;
}

/** An honest or adversarial (`evil`) computation of one stage: the same inputs give the same digests. */
export class StageMath {
  constructor(
    private readonly runId: string,
    private readonly evil: boolean,
  ) {}

  private tag(t: string): string {
    return this.evil ? `evil-${t}` : t;
  }

  /** The first stage's input: the microbatch's tokens (sampled from the run's data by (step, mb)). */
  tokens(step: number, mb: number): string {
    return digestOf(['tokens', this.runId, step, mb]);
  }

  forward(stage: number, params: string, mb: number, input: string): string {
    return digestOf([this.tag('act'), this.runId, stage, params, mb, input]);
  }

  /** The activation gradient sent back; `gradIn` null on the last stage (the loss's gradient). */
  backward(stage: number, params: string, mb: number, input: string, gradIn: string | null): string {
    return digestOf([this.tag('grad'), this.runId, stage, params, mb, input, gradIn ?? '-']);
  }

  loss(stage: number, params: string, mb: number, input: string): number {
    return 2 + hashKeys([strKey(this.tag('loss')), strKey(params), mb, strKey(input), stage]) / 0x100000000;
  }

  /** The stage gradient contributed to the reduce: accumulated in backward order from each microbatch's inputs. */
  contrib(stage: number, params: string, order: readonly { mb: number; input: string; gradIn: string | null }[]): string {
    return digestOf([this.tag('contrib'), this.runId, stage, params, ...order.flatMap((o) => [o.mb, o.input, o.gradIn ?? '-'])]);
  }
}

/** The weights' digest of `stage` after `steps` applied updates (every honest replica agrees). */
export function paramsDigest(runId: string, stage: number, steps: number): string {
  return digestOf(['params', runId, stage, steps]);
}

/**
 * Local-steps mode: the weights of one lane's replica after an inner step from `params` with its own gradient
 * (`grad`, the contribution's digest) and clip scale. Lanes train on different microbatches, so they differ.
 */
export function innerParamsDigest(runId: string, stage: number, params: string, step: number, grad: string, scale: number): string {
  return digestOf(['inner', runId, stage, params, step, grad, String(scale)]);
}

/** Local-steps mode: the weights after the outer step of the sync after `step`, from every replica's payload in rank order. */
export function outerParamsDigest(runId: string, stage: number, step: number, payloads: readonly string[]): string {
  return digestOf(['outer', runId, stage, step, ...payloads]);
}
