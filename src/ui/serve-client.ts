// The contributor page on `tabswarm serve`: GET /api/config (src/protocol/serve-config.ts) says where signaling is,
// which ICE servers to use and which runs are live. Any other page host (vite dev, the demo's static server) has no
// such route: null, and the page falls back to its URL parameters or the single-tab engine.
import { parseServeConfig, type ServeConfig } from '../protocol/serve-config';

export async function fetchServeConfig(origin: string = location.origin, timeoutMs = 3000): Promise<ServeConfig | null> {
  let res: Response;
  try {
    res = await fetch(`${origin}/api/config`, { cache: 'no-store', signal: AbortSignal.timeout(timeoutMs) });
  } catch {
    return null;
  }
  if (!res.ok || !(res.headers.get('content-type') ?? '').includes('json')) return null;
  // A malformed answer is a server bug worth seeing: it throws (the page shows it), it does not silently go solo.
  return parseServeConfig(await res.json());
}

/** The RTCPeerConnection configuration the page's links use: the server's ICE servers and policy, or none (loopback). */
export function rtcConfig(cfg: ServeConfig | null): RTCConfiguration {
  if (!cfg) return { iceServers: [] };
  return { iceServers: cfg.iceServers.map((s) => ({ ...s })), iceTransportPolicy: cfg.iceTransportPolicy };
}
