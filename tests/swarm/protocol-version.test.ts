// The join handshake carries the protocol version: a coordinator refuses a peer of another version with a
// `refused` message that says so, and a refused SwarmPeer ends with that error instead of waiting forever.
// No GPU: the refused peer never gets a stage, so its compute backend is a stub.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignalingServer } from '../../signaling-server/server';
import { Coordinator } from '../../src/coordinator/coordinator';
import type { ComputeBackend } from '../../src/model/stage-compute';
import { DEFAULT_OPTIMIZER } from '../../src/model/stage';
import { nodeRtcFactory, nodeWebSocket } from '../../src/net/rtc-node';
import { connectSwarm } from '../../src/protocol/control-codec';
import type { ControlMessage } from '../../src/protocol/messages';
import { evenStages } from '../../src/coordinator/run-builder';
import { parseRunConfig } from '../../src/protocol/run-config';
import { PROTOCOL_VERSION } from '../../src/protocol/version';
import { SwarmPeer } from '../../src/swarm/peer';
import { coordinatorLabel, nextEvent, roomFingerprint, startServer } from '../net/helpers';
import { testIdentity } from '../support/identity';

let server: SignalingServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

const connect = async (room: string, label: string, role: 'peer' | 'coordinator') =>
  connectSwarm(server.url, {
    room,
    role,
    coordinator: roomFingerprint(room),
    identity: await testIdentity(role === 'coordinator' ? coordinatorLabel(room) : label),
    WebSocket: nodeWebSocket,
  });

const run = parseRunConfig({
  runId: 'versions',
  model: { n_layer: 2, n_head: 2, n_embd: 8, vocab_size: 16, block_size: 8 },
  stages: evenStages(2, 1),
  B: 1,
  T: 8,
  M: 1,
  steps: 1,
  schedule: { lr: 1e-3, minLr: 1e-4, warmup: 0, decaySteps: 1 },
  optimizer: { ...DEFAULT_OPTIMIZER, lr: 1e-3 },
  seed: 1,
});

describe('protocol version in the join handshake', () => {
  it('the coordinator refuses a peer of another version, saying which versions, and assigns it nothing', async () => {
    const coordSig = await connect('v1', 'coord', 'coordinator');
    const coordinator = new Coordinator(coordSig, { run, minPeers: 1 });
    const assigned: string[] = [];
    coordinator.events.on('assigned', (a) => assigned.push(a.peerId));
    const old = await connect('v1', 'old', 'peer');
    const reply = nextEvent<{ msg: ControlMessage }>((h) => old.on('control', h));
    // A later version's hello may carry fields this version does not know: it is still read, and refused.
    old.sendControl({ type: 'hello', protocol: PROTOCOL_VERSION + 1, features: ['x'] });
    old.sendControl({ type: 'peer-info', platform: 'node', gpu: true, throughput: 10 });
    const { msg } = await reply;
    expect(msg).toMatchObject({ type: 'refused', protocol: PROTOCOL_VERSION });
    expect(msg.type === 'refused' && msg.reason).toContain(`protocol version ${PROTOCOL_VERSION + 1}`);
    await old.signaling.ping();
    expect(assigned).toEqual([]);
    // A peer that skips the hello (version 1 had none) is refused too, never assigned.
    const older = await connect('v1', 'older', 'peer');
    const reply2 = nextEvent<{ msg: ControlMessage }>((h) => older.on('control', h));
    older.sendControl({ type: 'peer-info', platform: 'node', gpu: true, throughput: 10 });
    const second = (await reply2).msg;
    expect(second).toMatchObject({ type: 'refused', protocol: PROTOCOL_VERSION });
    expect(second.type === 'refused' && second.reason).toContain('without a hello');
    await older.signaling.ping();
    expect(assigned).toEqual([]);
    older.close();
    old.close();
    coordSig.close();
  });

  it('a refused SwarmPeer ends with an error that says why', async () => {
    // A coordinator of another version: answers every peer-info with `refused`.
    const coordSig = await connect('v2', 'coord', 'coordinator');
    coordSig.on('control', ({ from, msg }) => {
      if (msg.type === 'hello') coordSig.sendControl({ type: 'refused', reason: `protocol version ${msg.protocol} is not 99`, protocol: 99 }, from);
    });
    const stub: ComputeBackend = {
      adapter: null,
      benchmark: () => Promise.resolve(1),
      createStage: () => Promise.reject(new Error('a refused peer must not build a stage')),
      destroy: () => Promise.resolve(),
    };
    const peer = await SwarmPeer.join({
      url: server.url,
      room: 'v2',
      coordinator: coordSig.coordinatorFingerprint,
      WebSocket: nodeWebSocket,
      rtcFactory: nodeRtcFactory(),
      compute: () => Promise.resolve(stub),
      tokens: () => new Uint32Array(0),
      platform: 'node',
      throughput: 1,
    });
    const errors: Error[] = [];
    peer.events.on('error', (e) => errors.push(e));
    const done = await peer.finished();
    expect(done.reason).toMatch(/refused by the coordinator \(protocol 99, this peer \d+\): protocol version \d+ is not 99/);
    expect(errors.map((e) => e.message)).toEqual([done.reason]);
    peer.close();
    coordSig.close();
  });
});
