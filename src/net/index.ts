// Browser-safe public API of the network layer. Node-only factories live in ./rtc-node.js (import it directly).

export * from './dtype.js';
export * from './emitter.js';
export * from './ids.js';
export * from './control-envelope.js';
export * from './bounded-json.js';
export * from './tensor.js';
export * from './transport.js';
export { FramedTransport, DEFAULT_TRANSPORT_OPTIONS, type TransportOptionsInput } from './framed-transport.js';
export { createMemoryChannelPair, MemoryChannel } from './memory-channel.js';
export type { RawChannel } from './raw-channel.js';
export { RtcRawChannel } from './rtc-channel.js';
export { type RtcFactory, CHANNEL_LABEL } from './rtc-session.js';
export { browserRtcFactory } from './rtc-browser.js';
export { PeerNetwork, ConnectError, type PeerNetworkOptions } from './peer-network.js';
export {
  SignalingClient,
  SignalingError,
  type SignalingConnectOptions,
  type SignalEvent,
  type SignalingLink,
  type WebSocketConstructor,
} from './signaling-client.js';
export type { Role, SignalData, PeerSummary, ErrorCode } from './signaling-protocol.js';
export { DEFAULT_HEARTBEAT, type HeartbeatOptions } from './heartbeat.js';
export type { PartialDrop, ChunkRejection } from './reassembler.js';
export { TensorDemux, type TensorDemuxOptions } from './tensor-demux.js';
