// The browser's RTCPeerConnection as an RtcFactory. Loopback tests pass `iceServers: []`; Chromium additionally
// needs --allow-loopback-in-peer-connection and a media permission to gather loopback candidates (see notes).

import type { RtcFactory } from './rtc-session';

export function browserRtcFactory(config: RTCConfiguration = { iceServers: [] }): RtcFactory {
  return () => new RTCPeerConnection(config);
}
