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
  /** 'relay': only TURN relay candidates (every pair goes through the relay). */
  iceTransportPolicy?: RTCIceTransportPolicy;
}

export function nodeRtcFactory(opts: NodeRtcOptions = {}): RtcFactory {
  const bindAddress = opts.bindAddress === undefined ? '127.0.0.1' : opts.bindAddress;
  const config = {
    // The polyfill writes each TURN server as turn:USER:PASS@HOST for libdatachannel, which URL-decodes them: a TURN
    // REST username ("<expiry>:tabswarm") and a base64 credential ('/', '+', '=') must go in encoded.
    iceServers: (opts.iceServers ?? []).map((s) => ({
      ...s,
      ...(s.username !== undefined ? { username: encodeURIComponent(s.username) } : {}),
      ...(typeof s.credential === 'string' ? { credential: encodeURIComponent(s.credential) } : {}),
    })),
    iceTransportPolicy: opts.iceTransportPolicy ?? 'all',
    ...(bindAddress ? { bindAddress } : {}),
  };
  // The polyfill implements the W3C interface; bindAddress is passed through to libdatachannel's RtcConfig.
  return () => new NdcPeerConnection(config as RTCConfiguration) as unknown as RTCPeerConnection;
}

export const nodeWebSocket: WebSocketConstructor = WebSocket as unknown as WebSocketConstructor;
