// What a pipeline step costs this process beyond the single peer's, split into parts measured apart in the same run
// (CPU ms of every thread, process.cpuUsage: wall time on 2 shared cores says little about who used them):
//
// - split: the same step's GPU work cut into S stages on S devices in this process, microbatch by microbatch, with the
//   boundary payloads handed over in memory and the swarm's per-step sync of one replica per stage (the tied wte's
//   gradient exchanged, the norm read, AdamW, the parameters read back and digested). No network, no signatures, no
//   coordinator: what the stage split alone costs the driver and the host.
// - wire: the step's boundary payloads (activations forward, gradients back: 2 x M x (S - 1) of them) through one
//   real WebRTC link (node-datachannel on loopback, the signaling server, the framed transport), both ends here.
// - signatures: for each payload the SHA-256 digest and ECDSA signature at the sender, the digest and the
//   verification at the receiver (WebCrypto, the calls the peers make).
// - control: a step's signed control messages through a real signaling server, a coordinator and S peers: 3
//   broadcasts from the coordinator (step-begin, step-reduce, step-apply) and 2M + 3S reports (mb-loss and mb-done per
//   microbatch; step-trace, grad-sumsq and step-done per stage), each signed, relayed and verified.
//
// The rest of a swarm step's CPU (the stage runtime's bookkeeping, the schedule's wake-ups on shared cores) is what
// the swarm measured less the four.
import { startSignalingServer } from '../signaling-server/server';
import { nodeRuntime } from '../src/gpu/node-runtime';
import type { Runtime } from '../src/gpu/runtime';
import { sampleBatch, type Dataset } from '../src/model/data';
import { LocalComputeBackend, type StageCompute } from '../src/model/stage-compute';
import { ephemeralIdentity, verifySignature } from '../src/net/identity';
import { PeerNetwork } from '../src/net/peer-network';
import { nodeRtcFactory, nodeWebSocket } from '../src/net/rtc-node';
import { SignalingClient } from '../src/net/signaling-client';
import type { Transport } from '../src/net/transport';
import type { RunConfig } from '../src/protocol/run-config';
import { WTE } from '../src/model/config';
import { clipScale } from '../src/coordinator/coordinator';
import { connectSwarm, type SwarmSignaling } from '../src/protocol/control-codec';
import { payloadSigningText } from '../src/protocol/digest-signing';
import { sumOfSquares } from '../src/swarm/aggregate';
import { stageSpecOf } from '../src/swarm/stage-runtime';
import { digestBytes } from '../src/swarm/step-trace';
import { processCpuMs } from './thread-cpu';

/** Boundary payloads of one pipeline step: activations forward and gradients back, per microbatch and boundary. */
export function payloadsPerStep(run: RunConfig): number {
  return 2 * run.M * (run.stages.length - 1);
}

/**
 * CPU ms per step of the stage split alone (see the header): S >= 2 runtimes like S peers', every microbatch through
 * every stage and back, then the per-step sync. `steps` measured after one warm-up step.
 */
export async function splitCpuPerStep(data: Dataset, run: RunConfig, steps: number): Promise<number> {
  const S = run.stages.length;
  if (S < 2) throw new Error(`splitCpuPerStep: a pipeline has 2 stages or more, not ${S}`);
  const rts: Runtime[] = [];
  try {
    const stages: StageCompute[] = [];
    for (let s = 0; s < S; s++) {
      const rt = await nodeRuntime({ quiet: true, yieldCpu: true });
      rts.push(rt);
      const c = await new LocalComputeBackend(rt).createStage(stageSpecOf(run, s));
      await c.init(run.seed);
      stages.push(c);
    }
    const { B, T, M } = run;
    const lossScale = 1 / (M * B * T);
    // The first and the last stage hold the tied wte: only its slot crosses (one replica per stage).
    const [w0, wl] = [stages[0], stages[S - 1]].map((c) => c.layout.slots.find((x) => x.spec.name === WTE));
    if (!w0 || !wl) throw new Error('splitCpuPerStep: the first and the last stage hold no wte');
    let cpu0 = 0;
    for (let step = 0; step <= steps; step++) {
      if (step === 1) cpu0 = processCpuMs();
      await Promise.all(stages.map((c) => c.zeroGrads()));
      // Every microbatch in flight, as the swarm's default schedule: each one's chain runs as its inputs arrive.
      await Promise.all(
        Array.from({ length: M }, async (_, mb) => {
          const key = { step, mb };
          const b = sampleBatch(data.train, { seed: run.seed, step, micro: mb, B, T });
          let x = await stages[0].forward(mb, { tokens: b.inputs }, key);
          for (let s = 1; s < S - 1; s++) x = await stages[s].forward(mb, { payload: x }, key);
          let g = (await stages[S - 1].forwardBackward(0, { payload: x }, b.targets, lossScale, key)).gradIn;
          for (let s = S - 2; s >= 0 && g; s--) g = await stages[s].backward(mb, g, key);
        }),
      );
      // As the runtime's reduce: each stage's squares without the tied slot in the round trip that reads the slot,
      // the summed slot's squares added once.
      const slotAndSquares = (c: StageCompute, w: { offset: number; size: number }) =>
        Promise.all([c.readFlat('grads', { offset: w.offset, count: w.size }), c.gradSumSquares({ excludeTiedWte: true })]);
      const [[a, sq0], [z, sqLast]] = await Promise.all([slotAndSquares(stages[0], w0), slotAndSquares(stages[S - 1], wl)]);
      const middle = await Promise.all(stages.slice(1, -1).map((c) => c.gradSumSquares({ excludeTiedWte: true })));
      const sum = a.map((v, i) => v + z[i]);
      await stages[0].writeFlat('grads', sum.slice(), w0.offset);
      await stages[S - 1].writeFlat('grads', sum, wl.offset);
      const sumsq = sq0 + sqLast + middle.reduce((p, q) => p + q, 0) + sumOfSquares(sum);
      const scale = clipScale(Math.sqrt(sumsq), run.optimizer.gradClip);
      await Promise.all(stages.map((c) => c.optimizerStep(step + 1, run.optimizer, { scale, digest: true })));
    }
    const cpu1 = processCpuMs();
    return (cpu1 - cpu0) / steps;
  } finally {
    for (const rt of rts) rt.destroy();
  }
}

/** Two Node peers with one open WebRTC link through a fresh signaling server; `use` runs while it is up. */
async function withLink<T>(use: (send: Transport, receive: Transport) => Promise<T>): Promise<T> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  const coordinator = await ephemeralIdentity();
  const room = 'bench-wire';
  const clients: SignalingClient[] = [];
  const networks: PeerNetwork[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await SignalingClient.connect(server.url, {
        room,
        role: 'peer',
        coordinator: coordinator.fingerprint,
        identity: await ephemeralIdentity(),
        WebSocket: nodeWebSocket,
      });
      clients.push(c);
      networks.push(new PeerNetwork(c, nodeRtcFactory()));
    }
    const incoming = new Promise<Transport>((resolve) => {
      const off = networks[1].onConnection((t) => {
        off();
        resolve(t);
      });
    });
    const send = await networks[0].connect(clients[1].peerId);
    return await use(send, await incoming);
  } finally {
    for (const n of networks) n.close();
    for (const c of clients) c.close();
    await server.close();
  }
}

/** CPU ms (every thread of this process) to move one payload of `bytes` over a real WebRTC link, sender and receiver. */
export async function wireCpuPerPayload(bytes: number, count = 96): Promise<number> {
  return withLink(async (send, receive) => {
    const data = new Uint8Array(bytes);
    const round = async (n: number): Promise<void> => {
      let got = 0;
      const all = new Promise<void>((resolve) => {
        const off = receive.onTensor(() => {
          if (++got === n) {
            off();
            resolve();
          }
        });
      });
      for (let i = 0; i < n; i++) void send.sendTensor({ kind: 'act', dtype: 'u8', shape: [bytes], data, meta: { mb: i } });
      await all;
    };
    await round(8); // warm-up
    const cpu0 = processCpuMs();
    // In rounds of 8 (a step's microbatches in flight on one link), not one burst deeper than any step's.
    for (let i = 0; i < count; i += 8) await round(8);
    const cpu1 = processCpuMs();
    return (cpu1 - cpu0) / count;
  });
}

/** CPU ms per payload of `bytes` for its signatures: digest + sign at the sender, digest + verify at the receiver. */
export async function signatureCpuPerPayload(bytes: number, count = 96): Promise<number> {
  const id = await ephemeralIdentity();
  const data = new Uint8Array(bytes);
  const once = async (i: number): Promise<void> => {
    const slot = { runId: 'bench', step: i, attempt: 0, mb: 0, kind: 'act' as const, to: id.id };
    const sig = await id.sign(payloadSigningText(slot, await digestBytes(data)));
    const digest = await digestBytes(data);
    if (!(await verifySignature(id.publicKey, payloadSigningText(slot, digest), sig))) throw new Error('bench: signature does not verify');
  };
  for (let i = 0; i < 8; i++) await once(i);
  const cpu0 = processCpuMs();
  for (let i = 0; i < count; i++) await once(i);
  const cpu1 = processCpuMs();
  return (cpu1 - cpu0) / count;
}

/**
 * CPU ms per step of the control plane alone (see the header): S peers and a coordinator on a real signaling server,
 * `steps` rounds of a step's messages after one warm-up. The per-stage reports go as grad-sumsq (step-trace and
 * step-done are of the same size class: a few hundred bytes).
 */
export async function controlCpuPerStep(S: number, M: number, steps = 20): Promise<number> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  const room = 'bench-control';
  const all: SwarmSignaling[] = [];
  try {
    const coordinator = await connectSwarm(server.url, { room, role: 'coordinator', WebSocket: nodeWebSocket });
    all.push(coordinator);
    const peers: SwarmSignaling[] = [];
    for (let i = 0; i < S; i++) {
      const p = await connectSwarm(server.url, { room, role: 'peer', coordinator: coordinator.coordinatorFingerprint, WebSocket: nodeWebSocket });
      peers.push(p);
      all.push(p);
    }
    const members = peers.map((p) => [p.peerId]);
    let atCoordinator = 0;
    let atPeers = 0;
    let arrived: (() => void) | null = null;
    const want = { coordinator: 2 * M + 3 * S, peers: 3 * S };
    const check = () => {
      if (atCoordinator >= want.coordinator && atPeers >= want.peers) arrived?.();
    };
    coordinator.on('control', () => {
      atCoordinator++;
      check();
    });
    for (const p of peers)
      p.on('control', () => {
        atPeers++;
        check();
      });
    let cpu0 = 0;
    for (let step = 0; step <= steps; step++) {
      if (step === 1) cpu0 = processCpuMs();
      atCoordinator = atPeers = 0;
      const done = new Promise<void>((resolve) => (arrived = resolve));
      coordinator.sendControl({ type: 'step-begin', step, attempt: 0, owners: Array.from({ length: M }, () => 0), members }, '*');
      for (let mb = 0; mb < M; mb++) {
        peers[S - 1].sendControl({ type: 'mb-loss', step, attempt: 0, mb, loss: 3.25 });
        peers[0].sendControl({ type: 'mb-done', step, attempt: 0, mb });
      }
      coordinator.sendControl({ type: 'step-reduce', step, attempt: 0, members }, '*');
      coordinator.sendControl({ type: 'step-apply', step, attempt: 0, scale: 1, lr: 1e-3 }, '*');
      for (let k = 0; k < 3; k++) peers.forEach((p, stage) => p.sendControl({ type: 'grad-sumsq', step, attempt: 0, stage, value: 1.5 }));
      await done;
    }
    return (processCpuMs() - cpu0) / steps;
  } finally {
    for (const c of all) c.close();
    await server.close();
  }
}
