// Swarm pieces for the resilience benchmark (bench/resilience.ts): the tiny 2-stage run, an in-process coordinator on
// a real signaling server (restartable on its port), in-process Node peers over node-datachannel, medians.
import { startSignalingServer, type SignalingServer } from '../signaling-server/server';
import { Coordinator, type CoordinatorOptions } from '../src/coordinator/coordinator';
import { nodeRuntime } from '../src/gpu/node-runtime';
import { loadCorpus } from '../src/model/corpus-node';
import { Dataset } from '../src/model/data';
import { DEFAULT_OPTIMIZER } from '../src/model/stage';
import { CharTokenizer } from '../src/model/tokenizer';
import { nodeRtcFactory, nodeWebSocket } from '../src/net/rtc-node';
import { connectSwarm, type SwarmSignaling } from '../src/protocol/control-codec';
import { parseRunConfig, type RunConfig } from '../src/protocol/run-config';
import { SwarmPeer, type SwarmPeerOptions } from '../src/swarm/peer';

let dataset: Dataset | undefined;
export function benchData(): Dataset {
  if (!dataset) {
    const text = loadCorpus();
    dataset = Dataset.fromText(text, CharTokenizer.fromCorpus(text), { valFraction: 0.1 });
  }
  return dataset;
}

/** The tests' tiny model split in 2 stages of 2 layers (what `tabswarm peer` children load from the default corpus). */
export function tinyTwoStage(runId: string, steps: number, extra: Partial<RunConfig> = {}): RunConfig {
  const vocab = benchData().tokenizer?.vocabSize ?? 0;
  const schedule = { lr: 3e-3, minLr: 3e-4, warmup: 1, decaySteps: steps };
  return parseRunConfig({
    runId,
    model: { n_layer: 4, n_head: 2, n_embd: 32, vocab_size: vocab, block_size: 16 },
    stages: [
      { layerStart: 0, layerEnd: 2 },
      { layerStart: 2, layerEnd: 4 },
    ],
    B: 2,
    T: 16,
    M: 4,
    steps,
    schedule,
    optimizer: { ...DEFAULT_OPTIMIZER, lr: schedule.lr },
    seed: 11,
    ...extra,
  });
}

export interface BenchSwarm {
  readonly server: SignalingServer;
  sig: SwarmSignaling;
  coordinator: Coordinator;
  peers: SwarmPeer[];
  addPeer(extra?: Partial<SwarmPeerOptions>): Promise<SwarmPeer>;
  /** Stops the signaling server; startServer() starts a new one on the same port (the clients rejoin it). */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
}

/** A signaling server in this process while `use` runs. */
export async function withServer<T>(use: (server: SignalingServer) => Promise<T>): Promise<T> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  try {
    return await use(server);
  } finally {
    await server.close().catch(() => undefined);
  }
}

/** A signaling server and a coordinator in this process; `use` runs while they are up; closed afterwards. */
export async function withCoordinator<T>(
  run: RunConfig,
  opts: Partial<CoordinatorOptions> & { minPeers: number },
  use: (sw: BenchSwarm) => Promise<T>,
): Promise<T> {
  let server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  const room = run.runId;
  const sig = await connectSwarm(server.url, { room, role: 'coordinator', WebSocket: nodeWebSocket });
  const coordinator = new Coordinator(sig, { run, stepTimeoutMs: 60_000, readyTimeoutMs: 60_000, ...opts });
  const peers: SwarmPeer[] = [];
  const sw: BenchSwarm = {
    get server() {
      return server;
    },
    sig,
    coordinator,
    peers,
    async addPeer(extra = {}) {
      const p = await SwarmPeer.join({
        url: server.url,
        room,
        coordinator: sig.coordinatorFingerprint,
        WebSocket: nodeWebSocket,
        rtcFactory: nodeRtcFactory(),
        runtime: () => nodeRuntime({ quiet: true }),
        tokens: () => benchData().train,
        platform: 'node',
        throughput: 1000,
        ...extra,
      });
      peers.push(p);
      return p;
    },
    stopServer: () => server.close(),
    async startServer() {
      server = await startSignalingServer({ host: '127.0.0.1', port: server.port });
    },
  };
  try {
    return await use(sw);
  } finally {
    coordinator.close();
    for (const p of peers) p.close();
    sig.close();
    await server.close().catch(() => undefined);
  }
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median step time of a run's steps after step 0 (step 0 compiles every pipeline: not a sample). */
export function medianStepMs(reports: { step: number; ms: number }[]): number {
  return median(reports.filter((r) => r.step > 0).map((r) => r.ms));
}

/** `p`, or a rejection after `ms` saying `what` took too long. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms))),
  ]);
}
