// Shared setup of the swarm suites: a real signaling server, a coordinator, in-process Node peers each with its own
// GPU device, real node-datachannel WebRTC between them; and the single-peer reference (Trainer) on the same batches.
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server';
import { Coordinator, type CoordinatorOptions } from '../../src/coordinator/coordinator';
import type { RunConfig } from '../../src/protocol/run-config';
import { nodeRuntime } from '../../src/gpu/node-runtime';
import type { Runtime } from '../../src/gpu/runtime';
import type { GPTConfig } from '../../src/model/config';
import { loadCorpus } from '../../src/model/corpus-node';
import { Dataset, sampleBatch } from '../../src/model/data';
import { CharTokenizer } from '../../src/model/tokenizer';
import { Trainer } from '../../src/model/trainer';
import { runEngineOptions } from '../../src/coordinator/run-model';
import { DEFAULT_OPTIMIZER } from '../../src/model/stage';
import { nodeRtcFactory, nodeWebSocket } from '../../src/net/rtc-node';
import { connectSwarm, type SwarmSignaling } from '../../src/protocol/control-codec';
import { testId, testIdentity } from '../support/identity';
import { SwarmPeer, type SwarmPeerOptions } from '../../src/swarm/peer';
import { holdingControlPlane, type HoldControl } from './held-control';

export const LOG =
  process.env.SWARM_LOG === '1' ? (s: string) => process.stderr.write(`${new Date().toISOString().slice(14, 23)} ${s}\n`) : undefined;

let dataset: Dataset | undefined;
export function data(): Dataset {
  if (!dataset) {
    const text = loadCorpus();
    dataset = Dataset.fromText(text, CharTokenizer.fromCorpus(text), { valFraction: 0.1 });
  }
  return dataset;
}

export function tinyRun(runId: string, nLayer: number, stages: [number, number][], overrides: Partial<RunConfig> = {}): RunConfig {
  const vocab = data().tokenizer!.vocabSize;
  const model: GPTConfig = { n_layer: nLayer, n_head: 2, n_embd: 32, vocab_size: vocab, block_size: 16 };
  const schedule = { lr: 3e-3, minLr: 3e-4, warmup: 1, decaySteps: 3 };
  return {
    runId,
    model,
    stages: stages.map(([a, b]) => ({ layerStart: a, layerEnd: b })),
    B: 2,
    T: 16,
    M: 4,
    steps: 3,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: schedule.lr },
    seed: 11,
    ...overrides,
  };
}

export interface Swarm {
  server: SignalingServer;
  coordSig: SwarmSignaling;
  coordinator: Coordinator;
  peers: SwarmPeer[];
  /**
   * `id` labels the peer's deterministic test key (its peer id is idOf(id)); `extra`: options of this peer that differ
   * from the harness's (e.g. its own compute backend).
   */
  addPeer(id: string, throughput?: number, extra?: Partial<SwarmPeerOptions>): Promise<SwarmPeer>;
  /** The peer id addPeer(label) joins with (known before it joins). */
  idOf(label: string): string;
  /** Stops the signaling server (its clients start reconnecting); `server` is then closed until startServer(). */
  stopServer(): Promise<void>;
  /** Starts a new signaling server on the same port: the clients rejoin it (docs/resilience.md). */
  startServer(): Promise<void>;
  close(): Promise<void>;
}

/** `holdControl` holds chosen coordinator messages until an event (see held-control.ts). */
export async function startSwarm(
  run: RunConfig,
  room: string,
  { holdControl, ...opts }: Partial<CoordinatorOptions> & { minPeers: number; holdControl?: HoldControl },
): Promise<Swarm> {
  let server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  // Deterministic test keys (tests/support/identity.ts): the same ids on every run.
  const coordSig = await connectSwarm(server.url, {
    room,
    role: 'coordinator',
    identity: await testIdentity(`coordinator/${room}`),
    WebSocket: nodeWebSocket,
    log: LOG,
  });
  const plane = holdControl ? holdingControlPlane(coordSig, holdControl) : coordSig;
  const coordinator = new Coordinator(plane, { run, log: LOG, stepTimeoutMs: 30_000, readyTimeoutMs: 30_000, ...opts });
  const peers: SwarmPeer[] = [];
  const addPeer = async (id: string, throughput?: number, extra: Partial<SwarmPeerOptions> = {}) => {
    const p = await SwarmPeer.join({
      url: server.url,
      room,
      coordinator: coordSig.coordinatorFingerprint,
      identity: await testIdentity(`${room}/${id}`),
      WebSocket: nodeWebSocket,
      rtcFactory: nodeRtcFactory(),
      runtime: () => nodeRuntime({ quiet: true }),
      tokens: () => data().train,
      platform: 'node',
      throughput,
      reduceTimeoutMs: 20_000,
      log: LOG,
      ...extra,
    });
    peers.push(p);
    return p;
  };
  return {
    get server() {
      return server;
    },
    coordSig,
    coordinator,
    peers,
    addPeer,
    idOf: (label) => testId(`${room}/${label}`),
    stopServer: () => server.close(),
    async startServer() {
      server = await startSignalingServer({ host: '127.0.0.1', port: server.port });
    },
    async close() {
      coordinator.close();
      for (const p of peers) p.close();
      coordSig.close();
      await server.close();
    },
  };
}

/**
 * The single-peer engine on the same init and batches (micro k of step s = sampleBatch(seed, s, k)); for a compressed
 * run, split at the run's boundaries with its codecs and bottleneck (runEngineOptions): the swarm's invariant.
 */
export async function reference(run: RunConfig, steps = run.steps): Promise<{ rt: Runtime; params: Map<string, Float32Array>; losses: number[] }> {
  const rt = await nodeRuntime({ quiet: true });
  const tr = await Trainer.create(rt, runEngineOptions(rt, run));
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const micro = Array.from({ length: run.M }, (_, k) => sampleBatch(data().train, { seed: run.seed, step: s, micro: k, B: run.B, T: run.T }));
    losses.push((await tr.step(s, micro)).loss);
  }
  const params = await tr.exportParams();
  return { rt, params, losses };
}

export interface Diff {
  name: string;
  maxAbs: number;
  /** maxAbs / max |reference| of that tensor. */
  rel: number;
  /** maxAbs / max(1, max |reference|): the tolerance metric (AdamW updates are lr-sized whatever the weight). */
  score: number;
}

/** One tensor against its reference (a NaN anywhere makes maxAbs NaN). */
export function tensorDiff(name: string, got: Float32Array, want: Float32Array): Diff {
  let d = 0;
  let mag = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    mag = Math.max(mag, Math.abs(want[i]));
  }
  return { name, maxAbs: d, rel: d / Math.max(mag, 1e-12), score: d / Math.max(1, mag) };
}

/** The worst of `diffs` by score (a non-finite difference is worst) and by relative size. */
export function worstDiffs(diffs: Iterable<Diff>): { worst: Diff; worstRel: Diff; checked: number } {
  let worst: Diff = { name: 'none (every tensor bitwise equal)', maxAbs: 0, rel: 0, score: 0 };
  let worstRel = worst;
  let checked = 0;
  for (const diff of diffs) {
    checked++;
    if (diff.score > worst.score || !Number.isFinite(diff.maxAbs)) worst = diff;
    if (diff.rel > worstRel.rel) worstRel = diff;
  }
  return { worst, worstRel, checked };
}

/** Every parameter of every peer against the reference; the worst tensor. */
export async function compareToReference(
  peers: SwarmPeer[],
  ref: Map<string, Float32Array>,
): Promise<{ worst: Diff; worstRel: Diff; checked: number }> {
  const diffs: Diff[] = [];
  for (const p of peers) {
    const got = await p.runtime!.stage.params.read('params');
    for (const [name, v] of got) diffs.push(tensorDiff(`${p.peerId}:${name}`, v, ref.get(name)!));
  }
  return worstDiffs(diffs);
}

/** Replicas of one stage: params, AdamW m and v byte-identical. */
export async function replicasIdentical(a: SwarmPeer, b: SwarmPeer): Promise<boolean> {
  for (const which of ['params', 'm', 'v'] as const) {
    const x = await a.runtime!.stage.params.readFlat(which);
    const y = await b.runtime!.stage.params.readFlat(which);
    if (Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) !== 0) return false;
  }
  return true;
}

/** The peer's StageRuntime once the coordinator assigned it a stage. */
export function whenAssigned(p: SwarmPeer): Promise<NonNullable<SwarmPeer['runtime']>> {
  if (p.runtime) return Promise.resolve(p.runtime);
  return new Promise((resolve) => p.events.once('assigned', () => resolve(p.runtime!)));
}
