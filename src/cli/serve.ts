// `tabswarm serve` (docs/deployment.md): one process, one port, for a real deployment: the built pages (sirv), the
// signaling WebSocket on /signal, GET /api/config (signal URL, ICE servers with fresh TURN REST credentials, live
// rooms, the served dataset) and the dataset routes (src/cli/serve-data.ts). TLS with --cert/--key, or plain http
// behind a TLS proxy (--public-url / X-Forwarded-Proto). `startServe` is the programmatic form (tests, `tabswarm demo`).
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { HttpError, sendJson } from '../../signaling-server/http-util';
import { startHttpApp, type Route } from '../../signaling-server/http-app';
import { DEFAULT_LIMITS, type ServerLimits } from '../../signaling-server/limits';
import { turnCredentials } from '../../signaling-server/turn-credentials';
import { DEFAULT_ROOM } from '../coordinator/run-builder';
import type { TextData } from '../model/text-data';
import { roomIdSchema } from '../net/ids';
import { parseServeConfig, SERVE_CONFIG_VERSION, type IceServer, type ServeConfig } from '../protocol/serve-config';
import type { DataSpec } from '../protocol/run-config';
import { num, parse, str, UsageError } from './args';
import { ensurePages } from './pages';
import { dataRoutes, DataStore, loadDataFile, type DataOptions } from './serve-data';

export interface ServeOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** PEM certificate chain and key (contents): https and wss on the one port. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** The origin people open, when a TLS proxy sits in front (https://swarm.example.org): the signal URL follows it. */
  publicUrl?: string;
  stun?: string[];
  turn?: string[];
  /** coturn's static-auth-secret: credentials are derived from it per request; it never leaves the server. */
  turnSecret?: string;
  /** Seconds a TURN credential stays valid (default 3600). */
  turnTtlS?: number;
  /** Pages and peers use only relayed candidates. */
  relayOnly?: boolean;
  /** The room pages use when none is named (default DEFAULT_ROOM). */
  room?: string;
  /**
   * The runs' dataset, served and reported in /api/config `data`: a text file prepared at start, or one already
   * prepared (tabswarm demo tokenizes it for its coordinator anyway).
   */
  data?: ({ path: string } & DataOptions) | { prepared: TextData };
  /** POST /api/data (default true). */
  upload?: boolean;
  maxUploadBytes?: number;
  /** The built pages: a directory; undefined: built (and cached) from the sources; false: no pages. */
  pages?: string | false;
  limits?: Partial<ServerLimits>;
  log?: (s: string) => void;
}

export interface ServeHandle {
  /** http(s)://host:port */
  url: string;
  /** ws(s)://host:port/signal (or --public-url's) */
  signalUrl: string;
  /** The dataset `data` serves, with its url (null: none). */
  data: DataSpec | null;
  /** /api/config as this server answers a client on `url`. */
  config(): Promise<ServeConfig>;
  close(): Promise<void>;
}

export const DEFAULT_SERVE_PORT = 8080;
export const DEFAULT_TURN_TTL_S = 3600;
/** A Host header: a name or IPv4 address, or a bracketed IPv6 one, with an optional port. */
const HOST_RE = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

function checkUrls(urls: string[], scheme: RegExp, flag: string): string[] {
  if (urls.length > 16) throw new UsageError(`--${flag}: at most 16 URLs`);
  for (const u of urls) if (!scheme.test(u) || u.length > 500) throw new UsageError(`--${flag} ${u}: expected ${scheme.source.slice(1, -5)} URL`);
  return urls;
}

/** --public-url: an http(s) origin; the signal URL is its ws(s) form plus /signal. */
function publicOrigin(raw: string): { scheme: 'http' | 'https'; host: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`--public-url ${raw}: not a URL`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname !== '/' || u.search || u.hash || u.username) {
    throw new UsageError(`--public-url ${raw}: expected an origin like https://swarm.example.org (no path: serve's routes sit at the root)`);
  }
  return { scheme: u.protocol === 'https:' ? 'https' : 'http', host: u.host };
}

/** The scheme and host a request came in on (a proxy's X-Forwarded-Proto counts; a bad Host header is a 400). */
function requestOrigin(req: IncomingMessage, secure: boolean, fallbackHost: string): { scheme: 'http' | 'https'; host: string } {
  const fwd = req.headers['x-forwarded-proto'];
  const proto = (Array.isArray(fwd) ? fwd[0] : fwd)?.split(',')[0].trim().toLowerCase();
  const host = req.headers.host ?? fallbackHost; // HTTP/1.0 may send none
  if (!HOST_RE.test(host)) throw new HttpError(400, 'bad Host header');
  return { scheme: secure || proto === 'https' ? 'https' : 'http', host };
}

export async function startServe(opts: ServeOptions = {}): Promise<ServeHandle> {
  const log = opts.log ?? (() => undefined);
  const stun = checkUrls(opts.stun ?? [], /^stuns?:\S+$/, 'stun');
  const turn = checkUrls(opts.turn ?? [], /^turns?:\S+$/, 'turn');
  const ttl = opts.turnTtlS ?? DEFAULT_TURN_TTL_S;
  if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError(`--turn-ttl ${ttl}: a positive integer of seconds`);
  if (turn.length > 0 && !opts.turnSecret)
    throw new UsageError('--turn needs --turn-secret or --turn-secret-file (coturn: use-auth-secret, static-auth-secret)');
  if (opts.turnSecret && turn.length === 0) throw new UsageError('--turn-secret without --turn: name the TURN server (--turn turn:host:3478)');
  if (opts.relayOnly && turn.length === 0) throw new UsageError('--relay-only needs a TURN server (--turn)');
  const room = opts.room ?? DEFAULT_ROOM;
  if (!roomIdSchema.safeParse(room).success) throw new UsageError(`--room ${room}: 1-64 characters of [A-Za-z0-9_.:-]`);
  const pub = opts.publicUrl ? publicOrigin(opts.publicUrl) : null;

  const store = new DataStore('/');
  const data = !opts.data
    ? null
    : 'prepared' in opts.data
      ? store.add(opts.data.prepared, true)
      : await loadDataFile(store, opts.data.path, opts.data);
  if (data) log(`dataset ${data.name}: ${data.trainTokens} train + ${data.valTokens} validation ${data.tokenizer} tokens at ${data.url}`);
  const pages = opts.pages === false ? null : (opts.pages ?? (await ensurePages(log)));

  const iceServers = (): IceServer[] => {
    const out: IceServer[] = [];
    if (stun.length > 0) out.push({ urls: stun });
    if (turn.length > 0 && opts.turnSecret) {
      const c = turnCredentials(opts.turnSecret, ttl);
      out.push({ urls: turn, username: c.username, credential: c.credential });
    }
    return out;
  };
  let liveRooms: () => ServeConfig['rooms'] = () => [];
  const configFor = (origin: { scheme: 'http' | 'https'; host: string }): ServeConfig => {
    const at = pub ?? origin;
    return parseServeConfig({
      version: SERVE_CONFIG_VERSION,
      signal: `${at.scheme === 'https' ? 'wss' : 'ws'}://${at.host}/signal`,
      room,
      iceServers: iceServers(),
      iceTransportPolicy: opts.relayOnly ? 'relay' : 'all',
      turnTtlS: turn.length > 0 ? ttl : 0,
      rooms: liveRooms().slice(0, 64),
      data,
      upload: opts.upload !== false,
    });
  };

  const configRoute: Route = {
    method: 'GET',
    path: /^\/api\/config$/,
    handle({ req, res, secure }) {
      sendJson(res, 200, configFor(requestOrigin(req, secure, hostPort)), { 'cache-control': 'no-store' });
    },
  };
  let hostPort = '';
  const app = await startHttpApp({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? DEFAULT_SERVE_PORT,
    tls: opts.tls,
    pages,
    limits: opts.limits,
    routes: [configRoute, ...dataRoutes(store, { upload: opts.upload !== false, maxUploadBytes: opts.maxUploadBytes, log })],
    log,
  });
  liveRooms = () => app.liveRooms();
  const own = { scheme: app.secure ? ('https' as const) : ('http' as const), host: new URL(app.url).host };
  hostPort = own.host;
  const at = pub ?? own;
  return {
    url: app.url,
    signalUrl: `${at.scheme === 'https' ? 'wss' : 'ws'}://${at.host}/signal`,
    data,
    config: () => Promise.resolve(configFor(own)),
    close: () => app.close(),
  };
}

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const serveSummary = 'one process, one port for a real deployment: the pages, signaling, ICE servers (TURN credentials) and datasets';

export const serveHelp = `tabswarm serve [flags]
  ${serveSummary} (docs/deployment.md)
  --host 127.0.0.1    address to bind (0.0.0.0: every interface; put TLS in front or use --cert/--key)
  --port ${DEFAULT_SERVE_PORT}         --cert FILE --key FILE   PEM certificate chain and key: https + wss on the same port
  --public-url URL    the https origin people open when a TLS proxy (Caddy, nginx) sits in front
  --stun URL          a STUN server for every page and peer (repeatable), e.g. stun:stun.example.org:3478
  --turn URL          a TURN server (repeatable), e.g. turn:turn.example.org:3478?transport=udp; needs a shared secret:
  --turn-secret S | --turn-secret-file FILE   coturn's static-auth-secret (use-auth-secret): short-lived credentials
  --turn-ttl ${DEFAULT_TURN_TTL_S}     seconds a TURN credential stays valid     --relay-only   every connection through TURN
  --room ${DEFAULT_ROOM}         the room pages use when none is named
  --data FILE --tokenizer char|gpt2 [--vocab used|full]   serve a text as the runs' dataset (default: tinyshakespeare)
  --no-upload         refuse POST /api/data (people cannot upload their own text)
  --pages DIR         serve this vite build instead of building the pages into .cache/serve-dist
  --max-room-peers N  peers one room holds, the coordinator included (default ${DEFAULT_LIMITS.maxPeersPerRoom}); more are refused 'room-full'`;

function list(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export async function serve(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'public-url': { type: 'string' },
    stun: { type: 'string', multiple: true },
    turn: { type: 'string', multiple: true },
    'turn-secret': { type: 'string' },
    'turn-secret-file': { type: 'string' },
    'turn-ttl': { type: 'string' },
    'relay-only': { type: 'boolean' },
    room: { type: 'string' },
    data: { type: 'string' },
    tokenizer: { type: 'string' },
    vocab: { type: 'string' },
    'no-upload': { type: 'boolean' },
    pages: { type: 'string' },
    'max-room-peers': { type: 'string' },
  });
  const cert = str(values, 'cert');
  const key = str(values, 'key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--cert and --key go together');
  const read = (flag: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new UsageError(`--${flag} ${path}: ${(e as Error).message}`);
    }
  };
  if (values['turn-secret'] !== undefined && values['turn-secret-file'] !== undefined)
    throw new UsageError('--turn-secret or --turn-secret-file, not both');
  const secretFile = str(values, 'turn-secret-file');
  const turnSecret = secretFile ? read('turn-secret-file', secretFile).trim() : str(values, 'turn-secret');
  if (turnSecret === '') throw new UsageError('the TURN secret is empty');
  const tokenizer = str(values, 'tokenizer') ?? 'char';
  if (tokenizer !== 'char' && tokenizer !== 'gpt2') throw new UsageError(`--tokenizer ${tokenizer}: char or gpt2`);
  const vocab = str(values, 'vocab');
  if (vocab !== undefined && vocab !== 'used' && vocab !== 'full') throw new UsageError(`--vocab ${vocab}: used or full`);
  if (vocab !== undefined && tokenizer !== 'gpt2') throw new UsageError('--vocab applies to --tokenizer gpt2 only');
  const dataPath = str(values, 'data');
  if (!dataPath && (values.tokenizer !== undefined || vocab !== undefined)) throw new UsageError('--tokenizer/--vocab need --data FILE');

  const say = (s: string) => process.stderr.write(`[serve] ${s}\n`);
  const handle = await startServe({
    host: str(values, 'host'),
    port: num(values, 'port', DEFAULT_SERVE_PORT, { int: true, min: 0 }),
    tls: cert && key ? { cert: read('cert', cert), key: read('key', key) } : undefined,
    publicUrl: str(values, 'public-url'),
    stun: list(values.stun),
    turn: list(values.turn),
    turnSecret,
    turnTtlS: num(values, 'turn-ttl', DEFAULT_TURN_TTL_S, { int: true, min: 1 }),
    relayOnly: values['relay-only'] === true,
    room: str(values, 'room'),
    data: dataPath ? { path: dataPath, tokenizer, ...(vocab ? { vocab } : {}) } : undefined,
    upload: values['no-upload'] !== true,
    pages: str(values, 'pages'),
    limits: { maxPeersPerRoom: num(values, 'max-room-peers', DEFAULT_LIMITS.maxPeersPerRoom, { int: true, min: 2 }) },
    log: say,
  });
  const base = str(values, 'public-url')?.replace(/\/$/, '') ?? handle.url;
  say(`listening on ${handle.url} (signaling ${handle.signalUrl})`);
  say(`contributors open: ${base}/`);
  say(`coordinator page:  ${base}/coordinator.html`);
  const local = /^https?:\/\/(127\.|\[::1\]|localhost)/.test(base);
  if (!base.startsWith('https:') && !local)
    say('warning: WebGPU needs a secure context off localhost: use --cert/--key or a TLS proxy with --public-url https://...');
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  say('closing');
  await handle.close();
  return 0;
}
