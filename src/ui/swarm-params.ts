// URL parameters of the swarm pages.
//   contributor (index.html): ?signal=ws://host:port&room=ROOM&coordinator=FP[&token=T][&throughput=N][&log=1]
//   Swarm mode is on when `signal` or `room` is given, or on `tabswarm serve` (its /api/config): a missing `signal`
//   defaults to the server's signaling URL, else ws(s)://<page host>:8787; a missing `room` to the server's room,
//   else the run builder's DEFAULT_ROOM (the CLI's too); a missing `coordinator` to that live room's coordinator. `coordinator` is the fingerprint of the
//   run's coordinator key (the coordinator prints it): the only coordinator this tab obeys. The tab's own id comes
//   from its key (src/ui/key-store.ts).
import { DEFAULT_ROOM } from '../coordinator/run-builder';
import { FINGERPRINT_RE } from '../net/identity';
import type { ServeConfig } from '../protocol/serve-config';

export { DEFAULT_ROOM };
export const DEFAULT_SIGNAL_PORT = 8787;
/** The training corpus, served from public/. */
export const CORPUS_URL = '/tinyshakespeare.txt';

export interface SwarmParams {
  signal: string;
  room: string;
  /** The coordinator's key fingerprint; null when the URL has none (or not 64 hex digits): the tab cannot join. */
  coordinator: string | null;
  token?: string;
  throughput?: number;
  log: boolean;
}

export function defaultSignalUrl(loc: Location = location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.hostname || '127.0.0.1'}:${DEFAULT_SIGNAL_PORT}`;
}

/** The swarm parameters of a contributor URL (with `serve`'s config, if any), or null for the single-tab engine mode. */
export function swarmParams(search: string = location.search, loc: Location = location, cfg: ServeConfig | null = null): SwarmParams | null {
  const q = new URLSearchParams(search);
  if (!q.has('signal') && !q.has('room') && !cfg) return null;
  const t = Number(q.get('throughput'));
  const room = q.get('room') || cfg?.room || DEFAULT_ROOM;
  const named = q.get('coordinator') ?? '';
  // On serve, a room named without its coordinator takes the live room's (the server saw that key connect).
  const live = cfg?.rooms.find((r) => r.room === room)?.coordinator ?? null;
  return {
    signal: q.get('signal') || cfg?.signal || defaultSignalUrl(loc),
    room,
    coordinator: FINGERPRINT_RE.test(named) ? named : q.has('room') ? live : null,
    token: q.get('token') || undefined,
    throughput: q.has('throughput') && t > 0 ? t : undefined,
    log: q.get('log') === '1',
  };
}

/** "layer 3" or "layers 2–5" for the stage [start, end). */
export function layersLabel(start: number, end: number): string {
  return end - start === 1 ? `layer ${start}` : `layers ${start}–${end - 1}`;
}
