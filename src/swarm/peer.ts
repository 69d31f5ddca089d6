// A swarm peer, Node or browser: SignalingClient (control plane) + PeerNetwork (WebRTC links) + StageRuntime.
// At join it times a couple of forward/backward passes of a tiny stage (its throughput, tokens/s) and sends
// peer-info; the coordinator answers swarm-assign (run config + stage); swarm-members makes it link up with the
// peers it needs (copying its stage's weights + AdamW state from a live replica when it joins a running swarm) and
// report swarm-ready; the step messages then drive the StageRuntime. Browser-safe: the Node pieces (WebSocket,
// RTC factory, GPU runtime) are passed in.
import { parseRunConfig, type RunConfig } from '../coordinator/run-config';
import type { Runtime } from '../gpu/runtime';
import { Stage } from '../model/stage';
import { Emitter } from '../net/emitter';
import type { ControlMessage, ControlOf } from '../net/messages';
import { PeerNetwork, type PeerNetworkOptions } from '../net/peer-network';
import type { RtcFactory } from '../net/rtc-session';
import { SignalingClient, type WebSocketConstructor } from '../net/signaling-client';
import { dialsFirst, Links, neededPeers } from './links';
import { StageRuntime } from './stage-runtime';
import { layoutOf, receiveStageState, sendStageState } from './state-transfer';

export interface SwarmPeerOptions {
  url: string;
  room: string;
  peerId?: string;
  WebSocket?: WebSocketConstructor;
  rtcFactory: RtcFactory;
  /** This peer's own GPU runtime (destroyed by close()). */
  runtime: () => Promise<Runtime>;
  /** Training tokens of the run (only the first stage reads them). */
  tokens: (run: RunConfig) => Uint32Array | Promise<Uint32Array>;
  platform: 'node' | 'browser';
  /** Skip the join benchmark and announce this throughput (tokens/s). */
  throughput?: number;
  network?: PeerNetworkOptions;
  /** Link-up / state-transfer deadline (default 30 s). */
  linkTimeoutMs?: number;
  reduceTimeoutMs?: number;
  log?: (s: string) => void;
}

export type SwarmPeerEvents = {
  assigned: { stage: number; run: RunConfig };
  ready: { epoch: number };
  'state-received': { from: string; step: number; ms: number };
  'state-sent': { to: string; ms: number };
  shutdown: { reason?: string };
  error: Error;
};

/** Tokens/s of a tiny 1-layer stage (forward + backward), best of `reps` after a warm-up. */
export async function benchmarkThroughput(rt: Runtime, reps = 2): Promise<number> {
  const config = { n_layer: 1, n_head: 2, n_embd: 32, vocab_size: 64, block_size: 16 };
  const B = 2;
  const T = 16;
  const st = new Stage(rt, config, { layerStart: 0, layerEnd: 1 }, { B, T });
  const tokens = new Uint32Array(B * T).map((_, i) => (i * 7) % 64);
  st.setTokens(0, tokens);
  st.setTargets(0, tokens);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    st.forward(0);
    st.backward(0, { lossScale: 1 / (B * T) });
    await rt.read(st.gradNormValue);
    const dt = performance.now() - t0;
    if (r > 0) best = Math.min(best, dt); // r = 0 compiles the pipelines
  }
  for (const t of [st.params.params, st.params.grads, st.params.m, st.params.v]) rt.release(t);
  return (B * T * 1000) / Math.max(best, 1e-3);
}

export class SwarmPeer {
  readonly events = new Emitter<SwarmPeerEvents>();
  readonly links: Links;
  runtime: StageRuntime | null = null;
  run: RunConfig | null = null;
  throughput = 0;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly finishedP: Promise<{ reason?: string }>;

  private constructor(
    readonly signaling: SignalingClient,
    readonly network: PeerNetwork,
    readonly rt: Runtime,
    private readonly opts: SwarmPeerOptions,
  ) {
    this.links = new Links(
      network,
      (from, x) => this.runtime?.onTensor(from, x),
      (peer, info) => this.log(`link to ${peer} closed (${info.reason})`),
    );
    this.finishedP = new Promise((resolve) => this.events.once('shutdown', resolve));
    signaling.on('control', ({ msg }) => this.onControl(msg));
  }

  /** Joins the room, benchmarks, announces itself; training starts when the coordinator says so. */
  static async join(opts: SwarmPeerOptions): Promise<SwarmPeer> {
    const rt = await opts.runtime();
    let sig: SignalingClient | undefined;
    try {
      const throughput = opts.throughput ?? (await benchmarkThroughput(rt));
      sig = await SignalingClient.connect(opts.url, { room: opts.room, peerId: opts.peerId, role: 'peer', WebSocket: opts.WebSocket });
      const net = new PeerNetwork(sig, opts.rtcFactory, opts.network ?? {});
      const peer = new SwarmPeer(sig, net, rt, opts);
      peer.throughput = throughput;
      sig.sendControl({ type: 'peer-info', platform: opts.platform, gpu: true, throughput });
      return peer;
    } catch (err) {
      sig?.close();
      rt.destroy();
      throw err;
    }
  }

  get peerId(): string {
    return this.signaling.peerId;
  }

  /** Resolves when the coordinator announces the end of the run. */
  finished(): Promise<{ reason?: string }> {
    return this.finishedP;
  }

  private log(s: string): void {
    this.opts.log?.(`[${this.peerId}] ${s}`);
  }

  private report(err: unknown): void {
    if (this.closed) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.log(`error: ${e.message}`);
    this.events.emit('error', e);
    try {
      this.signaling.sendControl({ type: 'status', state: 'error', detail: e.message.slice(0, 1000) });
    } catch {
      // signaling gone
    }
  }

  private send(msg: ControlMessage): void {
    if (this.closed || !this.signaling.isOpen) return;
    this.signaling.sendControl(msg);
  }

  private onControl(msg: ControlMessage): void {
    if (this.closed) return;
    switch (msg.type) {
      case 'swarm-assign':
      case 'swarm-members':
        // Ordered and possibly slow (building the stage, linking up, state transfer).
        this.chain = this.chain.then(() => (msg.type === 'swarm-assign' ? this.assign(msg) : this.members(msg))).catch((e: unknown) => this.report(e));
        return;
      case 'shutdown':
        this.events.emit('shutdown', { reason: msg.reason });
        return;
      default:
        // Step messages: after any pending assign/membership work.
        if (this.runtime) this.runtime.onControl(msg);
        else void this.chain.then(() => this.runtime?.onControl(msg));
    }
  }

  private async assign(msg: ControlOf<'swarm-assign'>): Promise<void> {
    const run = parseRunConfig(msg.run);
    if (this.runtime) {
      if (this.runtime.stageIndex === msg.stage && this.run?.runId === run.runId) return;
      throw new Error(`already training stage ${this.runtime.stageIndex} of ${this.run?.runId}; reassignment is not supported`);
    }
    this.run = run;
    const tokens = msg.stage === 0 ? await this.opts.tokens(run) : undefined;
    this.runtime = new StageRuntime({
      rt: this.rt,
      run,
      stage: msg.stage,
      peerId: this.peerId,
      links: this.links,
      send: (m) => this.send(m),
      tokens,
      reduceTimeoutMs: this.opts.reduceTimeoutMs,
      log: this.opts.log,
      onError: (e) => this.report(e),
    });
    await this.runtime.idle();
    this.log(`assigned stage ${msg.stage} [${run.stages[msg.stage].layerStart}, ${run.stages[msg.stage].layerEnd})`);
    this.events.emit('assigned', { stage: msg.stage, run });
  }

  private async members(msg: ControlOf<'swarm-members'>): Promise<void> {
    const sr = this.runtime;
    if (!sr) return;
    const s = sr.stageIndex;
    if (!msg.stages[s]?.includes(this.peerId)) return; // not part of this epoch (e.g. waiting for a source)
    sr.setSpeeds(msg.stages, msg.speeds);
    const timeoutMs = this.opts.linkTimeoutMs ?? 30_000;
    const need = neededPeers(msg.stages, this.peerId, s);
    await Promise.all(need.map((p) => this.links.link(p, dialsFirst(msg.stages, this.peerId, p), timeoutMs)));
    const store = sr.stage.params;
    for (const j of msg.joins) {
      if (j.source === this.peerId) {
        // Between steps: my state is quiescent (the coordinator starts no step before everyone is ready).
        const t0 = performance.now();
        await sr.idle();
        const [params, m, v] = [await store.readFlat('params'), await store.readFlat('m'), await store.readFlat('v')];
        const t = this.links.get(j.peer);
        if (!t) throw new Error(`no link to joining replica ${j.peer}`);
        await sendStageState(t, { params, m, v, step: msg.step, layout: layoutOf(store) }, { stage: s, runId: sr.run.runId });
        this.events.emit('state-sent', { to: j.peer, ms: performance.now() - t0 });
      }
      if (j.peer === this.peerId) {
        const t0 = performance.now();
        const t = this.links.get(j.source);
        if (!t) throw new Error(`no link to state source ${j.source}`);
        const got = await receiveStageState(t, { timeoutMs, expectLayout: layoutOf(store) });
        if (got.step !== msg.step) throw new Error(`state from ${j.source} is at step ${got.step}, the run is at ${msg.step}`);
        store.writeFlat('params', got.params);
        store.writeFlat('m', got.m);
        store.writeFlat('v', got.v);
        sr.setStepsDone(got.step);
        await sr.idle();
        this.log(`received stage ${s} state from ${j.source} (step ${got.step}, digest ${got.digest})`);
        this.events.emit('state-received', { from: j.source, step: got.step, ms: performance.now() - t0 });
      }
    }
    this.send({ type: 'swarm-ready', epoch: msg.epoch });
    this.events.emit('ready', { epoch: msg.epoch });
  }

  /** Leaves cleanly: links, signaling, GPU. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.runtime?.close();
    this.links.close();
    this.network.close();
    this.signaling.close();
    // Let queued GPU work settle before the device goes away.
    const rt = this.rt;
    const idle = this.runtime?.idle() ?? Promise.resolve();
    void idle.finally(() => rt.destroy());
  }
}
