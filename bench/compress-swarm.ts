// A short real swarm run for the compression bench: S stages x 1 replica of Node peers in this process (each with
// its own GPU device), a real signaling server and node-datachannel WebRTC on loopback, the run's codecs and
// bottleneck on the wire. Returns the bytes every peer's transports and signaling connection counted (src/net
// WireMeter), by category: what the bench's predicted payload sizes are checked against.
import { startSignalingServer } from '../signaling-server/server';
import { Coordinator } from '../src/coordinator/coordinator';
import { nodeRuntime } from '../src/gpu/node-runtime';
import type { Dataset } from '../src/model/data';
import { nodeRtcFactory, nodeWebSocket } from '../src/net/rtc-node';
import { SignalingClient } from '../src/net/signaling-client';
import { swarmControl } from '../src/protocol/control-codec';
import type { RunConfig } from '../src/protocol/run-config';
import { addWireBytes, emptyWireBytes, wireBytesOf, type WireBytes } from '../src/protocol/wire-categories';
import { SwarmPeer } from '../src/swarm/peer';

export async function swarmWireBytes(data: Dataset, run: RunConfig): Promise<WireBytes> {
  const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
  const room = run.runId;
  const coordSig = await SignalingClient.connect(server.url, {
    room,
    peerId: 'coord',
    role: 'coordinator',
    WebSocket: nodeWebSocket,
    control: swarmControl,
  });
  const S = run.stages.length;
  const coordinator = new Coordinator(coordSig, { run, minPeers: S, stepTimeoutMs: 120_000, readyTimeoutMs: 60_000 });
  const peers: SwarmPeer[] = [];
  try {
    for (let i = 0; i < S; i++) {
      peers.push(
        await SwarmPeer.join({
          url: server.url,
          room,
          peerId: `w${i}`,
          WebSocket: nodeWebSocket,
          rtcFactory: nodeRtcFactory(),
          runtime: () => nodeRuntime({ quiet: true }),
          tokens: () => data.train,
          platform: 'node',
          throughput: 1000,
        }),
      );
    }
    await coordinator.finished();
    let sum = emptyWireBytes();
    for (const p of peers) sum = addWireBytes(sum, wireBytesOf(p.wire.snapshot()));
    return sum;
  } finally {
    coordinator.close();
    for (const p of peers) p.close();
    coordSig.close();
    await server.close();
  }
}
