// Browser-safe public API of the network layer. Node-only factories live in ./rtc-node.js (import it directly).

export * from './dtype';
export * from './emitter';
export * from './ids';
export * from './control-envelope';
export * from './bounded-json';
export * from './tensor';
export * from './transport';
export { FramedTransport, DEFAULT_TRANSPORT_OPTIONS, type TransportOptionsInput } from './framed-transport';
export { createMemoryChannelPair, MemoryChannel } from './memory-channel';
export type { RawChannel } from './raw-channel';
export { RtcRawChannel } from './rtc-channel';
export { type RtcFactory, CHANNEL_LABEL } from './rtc-session';
export { browserRtcFactory } from './rtc-browser';
export { PeerNetwork, ConnectError, type PeerNetworkOptions } from './peer-network';
export {
  SignalingClient,
  SignalingError,
  type SignalingConnectOptions,
  type SignalEvent,
  type SignalingLink,
  type WebSocketConstructor,
} from './signaling-client';
export type { Role, SignalData, PeerSummary, ErrorCode } from './signaling-protocol';
export { DEFAULT_HEARTBEAT, type HeartbeatOptions } from './heartbeat';
export type { PartialDrop, ChunkRejection } from './reassembler';
export { TensorDemux, type TensorDemuxOptions } from './tensor-demux';
export { WireMeter, WIRE_CONTROL, WIRE_LINK } from './wire-meter';
