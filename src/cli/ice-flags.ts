// ICE for the Node swarm commands (`tabswarm peer`, `tabswarm coordinator`): STUN/TURN servers and the transport
// policy by hand (--stun, --turn, --turn-user, --turn-pass, --relay-only), the local address libjuice binds (--bind),
// or all of it, with the signal URL and the room's coordinator, from a `tabswarm serve` (--serve URL: GET /api/config).
// docs/deployment.md "NAT traversal".
import { isIP } from 'node:net';
import { nodeRtcFactory } from '../net/rtc-node';
import type { RtcFactory } from '../net/rtc-session';
import { parseServeConfig, type IceServer, type ServeConfig } from '../protocol/serve-config';
import { str, UsageError } from './args';

export const iceFlagOptions = {
  stun: { type: 'string', multiple: true },
  turn: { type: 'string', multiple: true },
  'turn-user': { type: 'string' },
  'turn-pass': { type: 'string' },
  'relay-only': { type: 'boolean' },
  bind: { type: 'string' },
} as const;

export const iceFlagsHelp = `  --serve URL        a \`tabswarm serve\` (https://host): signal URL, room, its live coordinator and ICE servers
                     from URL/api/config (flags given beside it win)
  --stun URL         a STUN server (stun:HOST:3478), repeatable
  --turn URL         a TURN server (turn:HOST:3478[?transport=udp|tcp], turns:...), repeatable; needs --turn-user
                     and --turn-pass (a TURN REST pair from \`serve\`, or coturn's lt-cred-mech user)
  --relay-only       only relayed candidates (every link through TURN)
  --bind ADDR|any    local address for WebRTC (default 127.0.0.1 without ICE servers, \`any\` with them: every
                     interface, as a real network needs)`;

/** What a Node swarm command links with. */
export interface IceSetup {
  iceServers: IceServer[];
  iceTransportPolicy: 'all' | 'relay';
  /** null: every interface. */
  bindAddress: string | null;
}

const SERVE_CONFIG_MAX_BYTES = 1 << 20;

function strings(values: Record<string, unknown>, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function checkUrl(flag: string, url: string, schemes: readonly string[]): string {
  const scheme = /^([a-z]+):/.exec(url)?.[1];
  if (!scheme || !schemes.includes(scheme) || url.length > 500 || /\s/.test(url))
    throw new UsageError(`--${flag}: "${url.slice(0, 100)}" is not a ${schemes.map((s) => `${s}:`).join(' or ')} URL (e.g. ${schemes[0]}:HOST:3478)`);
  return url;
}

/** The ICE setup from the flags, added to what a `serve` hands out (`served`). Throws UsageError on a bad flag. */
export function iceFromFlags(values: Record<string, unknown>, served?: ServeConfig): IceSetup {
  const stun = strings(values, 'stun').map((u) => checkUrl('stun', u, ['stun', 'stuns']));
  const turn = strings(values, 'turn').map((u) => checkUrl('turn', u, ['turn', 'turns']));
  const user = str(values, 'turn-user');
  const pass = str(values, 'turn-pass');
  if (turn.length && (!user || !pass)) throw new UsageError("--turn needs --turn-user and --turn-pass (the TURN server's credentials)");
  if (!turn.length && (user || pass)) throw new UsageError('--turn-user/--turn-pass without --turn: name the TURN server');
  const iceServers: IceServer[] = [...(served?.iceServers ?? [])];
  if (stun.length) iceServers.push({ urls: stun });
  if (turn.length) iceServers.push({ urls: turn, username: user, credential: pass });
  const relayOnly = values['relay-only'] === true || served?.iceTransportPolicy === 'relay';
  const hasTurn = iceServers.some((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]).some((u) => u.startsWith('turn')));
  if (relayOnly && !hasTurn) throw new UsageError('--relay-only needs a TURN server (--turn, or a `serve` with --turn)');
  const bind = str(values, 'bind');
  let bindAddress: string | null = iceServers.length ? null : '127.0.0.1';
  if (bind === 'any') bindAddress = null;
  else if (bind !== undefined) {
    if (!isIP(bind)) throw new UsageError(`--bind: "${bind.slice(0, 100)}" is not an IP address or \`any\``);
    bindAddress = bind;
  }
  return { iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all', bindAddress };
}

export function rtcFactoryOf(ice: IceSetup): RtcFactory {
  return nodeRtcFactory({ bindAddress: ice.bindAddress, iceServers: ice.iceServers, iceTransportPolicy: ice.iceTransportPolicy });
}

/** One line for the logs: what the links will use. */
export function describeIce(ice: IceSetup): string {
  const urls = ice.iceServers.flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]));
  return `ICE: ${urls.length ? urls.join(', ') : 'no STUN/TURN server (direct links only)'}${ice.iceTransportPolicy === 'relay' ? ', relay only' : ''}; bind ${ice.bindAddress ?? 'any'}`;
}

/** GET `<base>/api/config` of a `tabswarm serve` (bounded in time and size), validated. */
export async function fetchServeConfig(base: string, timeoutMs = 10_000): Promise<ServeConfig> {
  let url: URL;
  try {
    url = new URL('api/config', base.endsWith('/') ? base : `${base}/`);
  } catch {
    throw new UsageError(`--serve: "${base.slice(0, 200)}" is not a URL (e.g. https://swarm.example.org)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--serve: ${base.slice(0, 200)} is not an http(s) URL`);
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    text = await res.text();
  } catch (e) {
    throw new Error(`--serve: could not read ${url.href}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (text.length > SERVE_CONFIG_MAX_BYTES) throw new Error(`--serve: ${url.href} answered ${text.length} bytes, more than a config`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`--serve: ${url.href} did not answer JSON (is it a \`tabswarm serve\`?)`);
  }
  return parseServeConfig(json);
}

/** The room to join and its coordinator: the flags', else the served room's live coordinator, else the newest live room. */
export function roomFromServe(cfg: ServeConfig, room: string | undefined, coordinator: string | undefined): { room: string; coordinator: string } {
  const name = room ?? (cfg.rooms.some((r) => r.room === cfg.room) || !cfg.rooms.length ? cfg.room : cfg.rooms[0].room);
  const fp = coordinator ?? cfg.rooms.find((r) => r.room === name)?.coordinator;
  if (!fp) throw new UsageError(`--serve: no coordinator is connected to room "${name}" now; give --coordinator FP (or start the run first)`);
  return { room: name, coordinator: fp };
}

/**
 * `tabswarm coordinator --serve` alone still starts its own loopback signaling server; `--serve URL` uses a
 * `tabswarm serve`. Rewrites the bare form to `--serve-local` so both parse.
 */
export function splitServeFlag(argv: string[]): string[] {
  return argv.map((a, i) => (a === '--serve' && (i + 1 >= argv.length || argv[i + 1].startsWith('-')) ? '--serve-local' : a));
}
