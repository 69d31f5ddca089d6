// The swarm's GPU side in a dedicated Web Worker (comlink). Chromium has no RTCPeerConnection in workers, so a
// browser swarm peer keeps signaling, links and the StageRuntime's protocol logic in the page and sends the compute
// here: this worker owns the WebGPU Runtime and the peer's Stage(s) (a LocalStageCompute each). The page side is
// src/swarm/worker-stage-compute.ts; both speak StageWorkerApi (src/model/stage-worker-api.ts). Big arrays travel
// both ways as transferables.
import * as Comlink from 'comlink';
import { browserRuntime } from '../gpu/browser-runtime';
import type { AdapterReport } from '../gpu/device';
import type { Runtime } from '../gpu/runtime';
import type { OuterCompute } from '../model/outer-compute';
import type { OuterHyper, OuterPart } from '../model/outer-optimizer';
import type { OptimizerHyper } from '../model/stage';
import {
  benchmarkRuntime,
  LocalStageCompute,
  type FlatRange,
  type FlatWhich,
  type MicrobatchKey,
  type StageInput,
  type StageLayout,
  type StageSpec,
} from '../model/stage-compute';
import type { StageWorkerApi } from '../model/stage-worker-api';

/** Transfers the array's buffer when it owns it whole, else sends a copy. */
function out<T extends Float32Array | Uint32Array | Uint8Array>(a: T): T {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? Comlink.transfer(a, [a.buffer as ArrayBuffer]) : a;
}

class StageWorker implements StageWorkerApi {
  private rt?: Runtime;
  private readonly stages = new Map<number, LocalStageCompute>();
  private nextId = 1;

  /** Acquires the device (once). */
  async open(): Promise<AdapterReport> {
    this.rt ??= await browserRuntime();
    return this.rt.handle.report;
  }

  private runtime(): Runtime {
    if (!this.rt) throw new Error('stage worker: init() first');
    return this.rt;
  }

  private stage(id: number): LocalStageCompute {
    const s = this.stages.get(id);
    if (!s) throw new Error(`stage worker: no stage ${id}`);
    return s;
  }

  benchmark(reps?: number): Promise<number> {
    return benchmarkRuntime(this.runtime(), reps);
  }

  /** Stage `id`'s outer state: present exactly when its run syncs by local steps. */
  private outer(id: number): OuterCompute {
    const o = this.stage(id).outer;
    if (!o) throw new Error(`stage worker: stage ${id} has no outer state (its run syncs per step)`);
    return o;
  }

  outerReset(id: number): Promise<void> {
    return this.outer(id).reset();
  }

  async outerEncode(id: number, step: number, lane: number): Promise<Uint8Array> {
    return out(await this.outer(id).encode(step, lane));
  }

  async outerApply(id: number, payloads: Uint8Array[], hyper: OuterHyper): Promise<Float32Array> {
    return out(await this.outer(id).apply(payloads, hyper));
  }

  async outerReadFlat(id: number, which: OuterPart): Promise<Float32Array> {
    return out(await this.outer(id).readFlat(which));
  }

  outerWriteFlat(id: number, which: OuterPart, data: Float32Array): Promise<void> {
    return this.outer(id).writeFlat(which, data);
  }

  async createStage(spec: StageSpec): Promise<{ id: number; layout: StageLayout }> {
    const s = new LocalStageCompute(this.runtime(), spec);
    const id = this.nextId++;
    this.stages.set(id, s);
    return { id, layout: s.layout };
  }

  load(id: number, values: Map<string, Float32Array>): Promise<void> {
    return this.stage(id).load(values);
  }

  initStage(id: number, seed: number): Promise<void> {
    return this.stage(id).init(seed);
  }

  async forward(id: number, slot: number, input: StageInput, key: MicrobatchKey): Promise<Uint8Array> {
    return out(await this.stage(id).forward(slot, input, key));
  }

  async forwardBackward(
    id: number,
    slot: number,
    input: StageInput,
    targets: Uint32Array,
    lossScale: number,
    key: MicrobatchKey,
  ): Promise<{ loss: number; gradIn: Uint8Array | null }> {
    const r = await this.stage(id).forwardBackward(slot, input, targets, lossScale, key);
    const g = r.gradIn;
    return g && g.byteOffset === 0 && g.byteLength === g.buffer.byteLength ? Comlink.transfer(r, [g.buffer as ArrayBuffer]) : r;
  }

  async backward(id: number, slot: number, gradOut: Uint8Array, key: MicrobatchKey): Promise<Uint8Array | null> {
    const g = await this.stage(id).backward(slot, gradOut, key);
    return g ? out(g) : null;
  }

  zeroGrads(id: number): Promise<void> {
    return this.stage(id).zeroGrads();
  }

  async readFlat(id: number, which: FlatWhich, range?: FlatRange): Promise<Float32Array> {
    return out(await this.stage(id).readFlat(which, range));
  }

  writeFlat(id: number, which: FlatWhich, data: Float32Array, offset?: number): Promise<void> {
    return this.stage(id).writeFlat(which, data, offset);
  }

  gradSumSquares(id: number, opts?: { excludeTiedWte?: boolean }): Promise<number> {
    return this.stage(id).gradSumSquares(opts);
  }

  optimizerStep(id: number, step: number, hyper: OptimizerHyper, opts: { scale?: number; digest?: boolean }): Promise<string | null> {
    return this.stage(id).optimizerStep(step, hyper, opts);
  }

  paramsDigest(id: number): Promise<string> {
    return this.stage(id).paramsDigest();
  }

  async dispose(id: number): Promise<void> {
    const s = this.stages.get(id);
    this.stages.delete(id);
    await s?.dispose();
  }

  /** Releases the device; the page terminates the worker afterwards. */
  async destroy(): Promise<void> {
    this.stages.clear();
    this.rt?.destroy();
    this.rt = undefined;
  }
}

Comlink.expose(new StageWorker());
