// A short real swarm run for the compression bench: S stages x 1 replica of Node peers in this process (each with
// its own GPU device), a real signaling server and node-datachannel WebRTC on loopback, the run's codecs and
// bottleneck on the wire. Returns the bytes every peer's transports and signaling connection counted (src/net
// WireMeter), by category: what the bench's predicted payload sizes are checked against.
import { withNodeSwarm } from './node-swarm';
import type { Dataset } from '../src/model/data';
import type { RunConfig } from '../src/protocol/run-config';
import { addWireBytes, emptyWireBytes, wireBytesOf, type WireBytes } from '../src/protocol/wire-categories';

export function swarmWireBytes(data: Dataset, run: RunConfig): Promise<WireBytes> {
  return withNodeSwarm(data, run, async ({ coordinator, peers }) => {
    await coordinator.finished();
    let sum = emptyWireBytes();
    for (const p of peers) sum = addWireBytes(sum, wireBytesOf(p.wire.snapshot()));
    return sum;
  });
}
