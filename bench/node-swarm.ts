// A swarm of Node peers on loopback for the benchmarks: the real signaling server, a coordinator and one peer per
// stage over real WebRTC. `use` runs while it is up; everything is closed afterwards, whatever `use` did.
import { startSignalingServer } from '../signaling-server/server';
import { Coordinator } from '../src/coordinator/coordinator';
import { nodeRuntime } from '../src/gpu/node-runtime';
import type { Dataset } from '../src/model/data';
import { nodeRtcFactory, nodeWebSocket } from '../src/net/rtc-node';
import { connectSwarm } from '../src/protocol/control-codec';
import type { RunConfig } from '../src/protocol/run-config';
import { SwarmPeer, type SwarmPeerOptions } from '../src/swarm/peer';

export interface NodeSwarm {
  coordinator: Coordinator;
  peers: SwarmPeer[];
}

/**
 * One peer per stage (ephemeral keys), or `opts.peers` peers with `opts.extra(i)` options each (e.g. an attack);
 * `onPeer` sees each as it joins, before the run starts.
 */
export async function withNodeSwarm<T>(
  data: Dataset,
  run: RunConfig,
  use: (sw: NodeSwarm) => Promise<T>,
  onPeer: (p: SwarmPeer) => void = () => undefined,
  opts: { peers?: number; extra?: (i: number) => Partial<SwarmPeerOptions> } = {},
): Promise<T> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  const room = run.runId;
  const coordSig = await connectSwarm(server.url, { room, role: 'coordinator', WebSocket: nodeWebSocket });
  const S = opts.peers ?? run.stages.length;
  const coordinator = new Coordinator(coordSig, { run, minPeers: S, stepTimeoutMs: 120_000, readyTimeoutMs: 60_000 });
  const peers: SwarmPeer[] = [];
  try {
    for (let i = 0; i < S; i++) {
      const p = await SwarmPeer.join({
        url: server.url,
        room,
        coordinator: coordSig.coordinatorFingerprint,
        WebSocket: nodeWebSocket,
        rtcFactory: nodeRtcFactory(),
        runtime: () => nodeRuntime({ quiet: true, yieldCpu: true }),
        tokens: () => data.train,
        platform: 'node',
        throughput: 1000,
        ...opts.extra?.(i),
      });
      onPeer(p);
      peers.push(p);
    }
    return await use({ coordinator, peers });
  } finally {
    coordinator.close();
    for (const p of peers) p.close();
    coordSig.close();
    await server.close();
  }
}
