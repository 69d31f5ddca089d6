// Tests and demos only (`tabswarm peer --slow FACTOR`, SwarmPeerOptions.slow): a peer whose compute is FACTOR times
// slower, to show live rebalancing (docs/resilience.md). After each forward / forwardBackward / backward call it
// sleeps (FACTOR - 1) x the time the call took: a sleep, not a spin, so the machine's cores stay free for the other
// peers (a slow GPU, not a busy CPU). A first stage's backward returns before the GPU ran it; its time shows up in
// the next call that waits for the GPU, which is slowed for it.
import { DelegatingCompute, wrapStages, type ComputeBackend, type MicrobatchKey, type StageCompute, type StageInput } from '../model/stage-compute';

/** How much slower; read at every call, so a test may change it mid-run (1: full speed). */
export interface SlowSpec {
  factor: number;
}

/** The factor of `--slow FACTOR`: a finite number >= 1. */
export function parseSlowFactor(s: string): number {
  const f = Number(s);
  if (!Number.isFinite(f) || f < 1 || f > 1000) throw new Error(`--slow: FACTOR must be a number from 1 to 1000, got ${JSON.stringify(s)}`);
  return f;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class SlowCompute extends DelegatingCompute {
  constructor(
    inner: StageCompute,
    private readonly spec: SlowSpec,
  ) {
    super(inner);
  }

  private async slowed<T>(call: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const out = await call();
    const extra = (this.spec.factor - 1) * (performance.now() - t0);
    if (extra > 0) await sleep(extra);
    return out;
  }

  override forward(slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array> {
    return this.slowed(() => this.inner.forward(slot, input, key));
  }

  override forwardBackward(
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }> {
    return this.slowed(() => this.inner.forwardBackward(slot, input, targets, lossScale, key));
  }

  override backward(slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null> {
    return this.slowed(() => this.inner.backward(slot, gradOut, key));
  }
}

/** `inner` with every stage it builds slowed by `spec` (the join benchmark is not: it measures the device). */
export function slowBackend(inner: ComputeBackend, spec: SlowSpec): ComputeBackend {
  return wrapStages(inner, (stage) => new SlowCompute(stage, spec));
}
