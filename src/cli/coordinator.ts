// `tabswarm coordinator`: runs a swarm's coordinator for a run given by flags, on a signaling server given by
// --signal (or its own, --serve, on loopback). Peers (`tabswarm peer`, contributor tabs) join the room; training
// starts when --min-peers have joined and every stage has one. Prints a live table, optionally a text sample from
// the trained weights (fetched from one replica per stage over WebRTC: tensors never pass the signaling server),
// and a JSON summary as the last line.
//
// Also the library of the demo and the swarm bench: run config from flags, a coordinator session whose final
// `shutdown` is held back until the weights are collected, and the weight collector (an observer peer).
import { randomBytes } from 'node:crypto';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server.js';
import { Coordinator, type ControlPlane, type StepReport } from '../coordinator/coordinator';
import { evenStages, parseRunConfig, type RunConfig } from '../protocol/run-config';
import type { Runtime } from '../gpu/runtime';
import { gpt2ParamSpecs, type GPTConfig } from '../model/config';
import { loadCorpus } from '../model/corpus-node';
import { Dataset } from '../model/data';
import { ParamStore } from '../model/params';
import { Sampler } from '../model/sampler';
import { DEFAULT_OPTIMIZER } from '../model/stage';
import { CharTokenizer } from '../model/tokenizer';
import type { ControlMessage, ControlOf } from '../protocol/messages';
import { PeerNetwork } from '../net/peer-network';
import { nodeRtcFactory, nodeWebSocket } from '../net/rtc-node.js';
import { SignalingClient } from '../net/signaling-client';
import { dialsFirst, Links } from '../swarm/links';
import { receiveStageState } from '../swarm/state-transfer';
import { num, parse, str, UsageError } from './args';
import { cliRuntime, defaultCorpus, readText, saveCheckpointFile } from './engine';
import { LiveTable } from './live-table';

// ------------------------------------------------------------------------------------------- run config flags

export const runFlagOptions = {
  stages: { type: 'string' }, steps: { type: 'string' }, microbatches: { type: 'string' }, 'batch-size': { type: 'string' },
  'n-layer': { type: 'string' }, 'n-head': { type: 'string' }, 'n-embd': { type: 'string' }, 'block-size': { type: 'string' },
  lr: { type: 'string' }, 'min-lr': { type: 'string' }, warmup: { type: 'string' }, 'weight-decay': { type: 'string' },
  beta2: { type: 'string' }, 'grad-clip': { type: 'string' }, seed: { type: 'string' }, slots: { type: 'string' },
  'run-id': { type: 'string' }, data: { type: 'string' },
} as const;

export const runFlagsHelp = `  --stages 2 --steps 40 --microbatches 4 (M) --batch-size 4 (B, sequences per microbatch)
  --n-layer 4 --n-head 4 --n-embd 64 --block-size 64       model (T = block size)
  --lr 3e-3 --min-lr 3e-4 --warmup 5 --weight-decay 0.1 --beta2 0.99 --grad-clip 1.0 --seed 1337
  --slots N (in-flight microbatches per stage)  --run-id ID  --data public/tinyshakespeare.txt`;

export interface RunDefaults {
  stages: number; steps: number; M: number; B: number; n_layer: number; n_head: number; n_embd: number; block_size: number;
  lr: number; minLr: number; warmup: number;
}

/** The demo's model: small enough that SwiftShader tabs train it at a visible pace. */
export const DEMO_DEFAULTS: RunDefaults = {
  stages: 2, steps: 40, M: 4, B: 4, n_layer: 4, n_head: 4, n_embd: 64, block_size: 64, lr: 3e-3, minLr: 3e-4, warmup: 5,
};

/** The corpus (the swarm's peers must use the same file: the vocabulary comes from it). */
export function corpus(path?: string): { text: string; tokenizer: CharTokenizer; data: Dataset } {
  const text = path ? readText(path) : loadCorpus(defaultCorpus);
  const tokenizer = CharTokenizer.fromCorpus(text);
  return { text, tokenizer, data: Dataset.fromText(text, tokenizer, { valFraction: 0.1 }) };
}

export function runFromFlags(values: Record<string, unknown>, vocab: number, d: RunDefaults = DEMO_DEFAULTS): RunConfig {
  const int = { int: true, min: 1 };
  const steps = num(values, 'steps', d.steps, int);
  const blockSize = num(values, 'block-size', d.block_size, int);
  const nLayer = num(values, 'n-layer', d.n_layer, int);
  const S = num(values, 'stages', d.stages, int);
  if (S > nLayer) throw new UsageError(`--stages ${S} exceeds --n-layer ${nLayer} (a stage holds at least one layer)`);
  const lr = num(values, 'lr', d.lr, { min: 0 });
  const model: GPTConfig = {
    n_layer: nLayer, n_head: num(values, 'n-head', d.n_head, int), n_embd: num(values, 'n-embd', d.n_embd, int),
    vocab_size: vocab, block_size: blockSize,
  };
  const slots = values.slots === undefined ? undefined : num(values, 'slots', 1, int);
  const run = {
    runId: str(values, 'run-id') ?? `run-${randomBytes(4).toString('hex')}`,
    model,
    stages: evenStages(nLayer, S),
    B: num(values, 'batch-size', d.B, int),
    T: blockSize,
    M: num(values, 'microbatches', d.M, int),
    steps,
    schedule: { lr, minLr: num(values, 'min-lr', d.minLr, { min: 0 }), warmup: num(values, 'warmup', d.warmup, { int: true, min: 0 }), decaySteps: steps },
    optimizer: {
      ...DEFAULT_OPTIMIZER, lr,
      weightDecay: num(values, 'weight-decay', DEFAULT_OPTIMIZER.weightDecay, { min: 0 }),
      beta2: num(values, 'beta2', DEFAULT_OPTIMIZER.beta2, { min: 0 }),
      gradClip: num(values, 'grad-clip', DEFAULT_OPTIMIZER.gradClip, { min: 0 }),
    },
    seed: num(values, 'seed', 1337, { int: true, min: 0 }),
    ...(slots ? { slots } : {}),
  };
  try {
    return parseRunConfig(run);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

// ------------------------------------------------------------------------------------------- coordinator session

export interface CoordinatorSession {
  sig: SignalingClient;
  coordinator: Coordinator;
  /** Sends the run's final `shutdown` (held back by the session so the weights can be collected first). */
  release(): void;
  close(): void;
}

/**
 * A Coordinator on its own signaling connection. The coordinator's room-wide `shutdown` at the end of the run is
 * held until release(): peers stay up (idle, between steps) for collectWeights().
 */
export async function startCoordinatorSession(opts: {
  url: string; room: string; run: RunConfig; minPeers: number; log?: (s: string) => void; stepTimeoutMs?: number; readyTimeoutMs?: number;
}): Promise<CoordinatorSession> {
  const sig = await SignalingClient.connect(opts.url, { room: opts.room, peerId: 'coordinator', role: 'coordinator', WebSocket: nodeWebSocket });
  const held: ControlMessage[] = [];
  let released = false;
  const cp: ControlPlane = {
    get peerId() {
      return sig.peerId;
    },
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    on: ((event: 'control' | 'peer-left', handler: (ev: any) => void) => sig.on(event, handler)) as ControlPlane['on'],
    sendControl(msg, to) {
      if (!released && msg.type === 'shutdown' && (to === undefined || to === '*')) {
        held.push(msg);
        return;
      }
      if (sig.isOpen) sig.sendControl(msg, to);
    },
  };
  const coordinator = new Coordinator(cp, {
    run: opts.run, minPeers: opts.minPeers, log: opts.log, stepTimeoutMs: opts.stepTimeoutMs ?? 120_000, readyTimeoutMs: opts.readyTimeoutMs ?? 120_000,
  });
  return {
    sig,
    coordinator,
    release() {
      if (released) return;
      released = true;
      const msgs = held.length ? held.splice(0) : [{ type: 'shutdown', reason: `run ${opts.run.runId} over` } as const];
      for (const m of msgs) if (sig.isOpen) sig.sendControl(m, '*');
    },
    close() {
      coordinator.close();
      sig.close();
    },
  };
}

// ------------------------------------------------------------------------------------------- weight collection

/**
 * Fetches every stage's trained parameters from one replica per stage over WebRTC, as an observer peer: the
 * coordinator's control plane announces a membership epoch in which the observer is appended to every stage and
 * joins each stage as a new replica copying its state from the stage's first member (the swarm's ordinary
 * state-transfer path, src/swarm/peer.ts). Call between steps (after the run's last step, before the shutdown).
 */
export async function collectWeights(opts: {
  url: string; room: string; run: RunConfig; session: CoordinatorSession; members: string[][]; step: number;
  timeoutMs?: number; log?: (s: string) => void;
}): Promise<Map<string, Float32Array>> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const obsId = `observer-${randomBytes(3).toString('hex')}`;
  const sig = await SignalingClient.connect(opts.url, { room: opts.room, peerId: obsId, role: 'peer', WebSocket: nodeWebSocket });
  const net = new PeerNetwork(sig, nodeRtcFactory());
  const links = new Links(net, () => undefined);
  try {
    const members = opts.members.map((m) => [...m]);
    if (members.some((m) => m.length === 0)) throw new Error('collectWeights: a stage has no live replica');
    const stages = members.map((m) => [...m, obsId]);
    const msg: ControlOf<'swarm-members'> = {
      type: 'swarm-members',
      epoch: 1_000_000 + Math.floor(Math.random() * 1000),
      stages,
      speeds: stages.map((m) => m.map(() => 1)),
      joins: members.map((m, s) => ({ peer: obsId, stage: s, source: m[0] })),
      step: opts.step,
    };
    opts.session.sig.sendControl(msg, '*');
    const everyone = [...new Set(members.flat())];
    await Promise.all(everyone.map((p) => links.link(p, dialsFirst(stages, obsId, p), timeoutMs)));
    const out = new Map<string, Float32Array>();
    await Promise.all(
      members.map(async (m, s) => {
        const t = links.get(m[0]);
        if (!t) throw new Error(`collectWeights: no link to ${m[0]}`);
        const t0 = performance.now();
        const got = await receiveStageState(t, { timeoutMs });
        const layout = JSON.parse(got.layout) as { slots: [string, number, number, number[]][] };
        for (const [name, offset, size] of layout.slots) out.set(name, got.params.slice(offset, offset + size));
        opts.log?.(`stage ${s}: ${got.params.length} values from ${m[0]} (step ${got.step}) in ${(performance.now() - t0).toFixed(0)} ms`);
      }),
    );
    return out;
  } finally {
    links.close();
    net.close();
    sig.close();
  }
}

/** A text sample from a full set of parameters (names of gpt2ParamSpecs). */
export async function sampleText(rt: Runtime, config: GPTConfig, params: Map<string, Float32Array>, tokenizer: CharTokenizer, chars: number, seed: number): Promise<string> {
  const store = new ParamStore(rt, gpt2ParamSpecs(config), 'sample');
  store.load(params);
  const sampler = new Sampler(rt, config, store);
  const ids = await sampler.generate(tokenizer.encode('\n'), { maxNewTokens: chars, seed });
  return tokenizer.decode(ids);
}

export interface SwarmSummary {
  steps: number;
  peers: number;
  stages: number;
  first_loss: number;
  last_loss: number;
  tokens_per_s: number;
}

export function summarize(run: RunConfig, reports: StepReport[], tokensPerS: number): SwarmSummary {
  const peers = new Set<string>();
  for (const r of reports) for (const m of r.members) for (const p of m) peers.add(p);
  return {
    steps: reports.length,
    peers: peers.size,
    stages: run.stages.length,
    first_loss: reports[0]?.loss ?? Number.NaN,
    last_loss: reports[reports.length - 1]?.loss ?? Number.NaN,
    tokens_per_s: tokensPerS,
  };
}

/**
 * After a command has closed everything it opened: native libraries (node-datachannel's threads, a Dawn device
 * among several in one process) can hold a Node process for seconds to minutes after its event loop is empty.
 * A command that is done ends the process `ms` later with the exit code main() set.
 */
export function exitSoon(ms = 1500): void {
  setTimeout(() => process.exit(), ms);
}

// ------------------------------------------------------------------------------------------- the command

export const coordinatorHelp = `tabswarm coordinator [flags]      coordinate a swarm run; peers join with \`tabswarm peer\` or a contributor tab
  --signal ws://127.0.0.1:8787/  signaling server        --serve [--port 0]   start one on 127.0.0.1 instead
  --room R (default: tabswarm)   --min-peers N (default: --stages) peers needed before step 0
${runFlagsHelp}
  --sample-chars 200             text sample from the trained weights at the end (0: none)
  --out FILE                     also write the trained weights as a checkpoint
  --step-timeout 120             seconds without progress before a step is re-run
  --verbose                      coordinator log on stderr`;

export async function coordinator(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    ...runFlagOptions,
    signal: { type: 'string' }, serve: { type: 'boolean' }, port: { type: 'string' }, room: { type: 'string' },
    'min-peers': { type: 'string' }, 'sample-chars': { type: 'string' }, out: { type: 'string' },
    'step-timeout': { type: 'string' }, verbose: { type: 'boolean' },
  });
  const signal = str(values, 'signal');
  if (!signal && !values.serve) throw new UsageError('give --signal URL or --serve');
  if (signal && values.serve) throw new UsageError('--signal and --serve exclude each other');
  const { tokenizer } = corpus(str(values, 'data'));
  const run = runFromFlags(values, tokenizer.vocabSize);
  const room = str(values, 'room') ?? 'tabswarm';
  const minPeers = num(values, 'min-peers', run.stages.length, { int: true, min: 1 });
  const sampleChars = num(values, 'sample-chars', 200, { int: true, min: 0 });
  const log = values.verbose ? (s: string) => process.stderr.write(`${s}\n`) : undefined;
  let server: SignalingServer | undefined;
  if (values.serve) server = await startSignalingServer({ host: '127.0.0.1', port: num(values, 'port', 0, { int: true, min: 0 }) });
  const url = server?.url ?? signal!;
  const session = await startCoordinatorSession({ url, room, run, minPeers, log, stepTimeoutMs: num(values, 'step-timeout', 120, { min: 1 }) * 1000 });
  const stop = () => {
    session.close();
    void server?.close().then(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  try {
    process.stderr.write(
      `[coordinator] run ${run.runId}: ${run.model.n_layer} layers / ${run.stages.length} stages, ${run.steps} steps of ${run.M}x${run.B}x${run.T} tokens\n` +
        `[coordinator] waiting for ${minPeers} peer(s) in room "${room}" on ${url}\n` +
        `[coordinator]   node:    tabswarm peer --signal ${url} --room ${room}\n`,
    );
    const table = new LiveTable(session.coordinator, session.sig, { tokensPerStep: run.M * run.B * run.T, steps: run.steps, title: run.runId });
    let reports: StepReport[];
    try {
      reports = await session.coordinator.finished();
    } finally {
      table.stop();
    }
    if (sampleChars > 0 || values.out) {
      const params = await collectWeights({ url, room, run, session, members: session.coordinator.members(), step: session.coordinator.step, log });
      if (values.out) {
        saveCheckpointFile(String(values.out), { config: run.model, params, tokenizer: tokenizer.toJSON() });
        process.stderr.write(`[coordinator] wrote ${String(values.out)}\n`);
      }
      if (sampleChars > 0) {
        const rt = await cliRuntime();
        try {
          const text = await sampleText(rt, run.model, params, tokenizer, sampleChars, run.seed);
          process.stdout.write(`\n--- sample ---\n${text}\n--------------\n`);
        } finally {
          rt.destroy();
        }
      }
    }
    session.release();
    console.log(JSON.stringify(summarize(run, reports, table.tokensPerSecond())));
    return 0;
  } finally {
    process.off('SIGINT', stop);
    await new Promise((r) => setTimeout(r, 200)); // let the shutdown reach the server before the socket closes
    session.close();
    await server?.close();
    exitSoon();
  }
}
