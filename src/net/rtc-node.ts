// Node-only pieces, kept out of every browser import graph: node-datachannel's RTCPeerConnection polyfill and
// the `ws` WebSocket for the signaling client.

import { RTCPeerConnection as NdcPeerConnection } from 'node-datachannel/polyfill';
import WebSocket from 'ws';
import type { RtcFactory } from './rtc-session';
import type { WebSocketConstructor } from './signaling-client';

export interface NodeRtcOptions {
  /**
   * Local address libjuice binds to. Must be set in a loopback-only namespace, or no candidate is gathered
   * (loopback notes). null lets libdatachannel pick every interface (real networks, with iceServers for STUN).
   */
  bindAddress?: string | null;
  iceServers?: RTCIceServer[];
}

export function nodeRtcFactory(opts: NodeRtcOptions = {}): RtcFactory {
  const bindAddress = opts.bindAddress === undefined ? '127.0.0.1' : opts.bindAddress;
  const config = { iceServers: opts.iceServers ?? [], ...(bindAddress ? { bindAddress } : {}) };
  // The polyfill implements the W3C interface; bindAddress is passed through to libdatachannel's RtcConfig.
  return () => new NdcPeerConnection(config as RTCConfiguration) as unknown as RTCPeerConnection;
}

export const nodeWebSocket: WebSocketConstructor = WebSocket as unknown as WebSocketConstructor;
