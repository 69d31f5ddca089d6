// The Node server behind `tabswarm serve` (docs/deployment.md): ONE http(s) server, one port, for
//   - the built pages (a directory, served by sirv: only files that exist when it starts, no directory listing),
//   - the signaling WebSocket on one path (the same server, protocol and limits as `npm run server`),
//   - API routes the caller plugs in (src/cli/serve.ts: /api/config and the dataset routes),
// and the live rooms (coordinator connected) for the caller's /api/config. Every bad request gets a 4xx, a handler's
// failure a 500; nothing a client sends ends the process. It imports src/net only (.dependency-cruiser.cjs), so the
// swarm's schemas stay with the routes that use them.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import sirv from 'sirv';
import type { ServerLimits } from './limits';
import type { LiveRoomInfo } from './rooms';
import { attachSignaling, closeHttp } from './server';
import { HttpError, listen, sendJson } from './http-util';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** The route's path match (its groups). */
  match: RegExpExecArray;
  /** True when this server speaks TLS itself (a proxy in front says so with X-Forwarded-Proto). */
  secure: boolean;
}

export interface Route {
  /** GET routes answer HEAD too. */
  method: Method;
  /** Matched against the whole decoded pathname: anchor it. */
  path: RegExp;
  handle(ctx: RouteContext): void | Promise<void>;
}

export interface HttpAppOptions {
  /** Default 127.0.0.1: binding another address is an explicit choice. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** PEM certificate chain and key: the server speaks https/wss. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** The built pages; null: no pages (every static path is 404). */
  pages: string | null;
  /** The signaling WebSocket's path (default /signal). */
  signalPath?: string;
  limits?: Partial<ServerLimits>;
  routes?: Route[];
  log?: (msg: string) => void;
}

export interface HttpApp {
  /** http(s)://host:port, a wildcard address shown as loopback. */
  url: string;
  host: string;
  port: number;
  secure: boolean;
  signalPath: string;
  liveRooms(): LiveRoomInfo[];
  stats(): { connections: number; rooms: number };
  close(): Promise<void>;
}

/** On every answer: no MIME sniffing, no framing by other sites, no Referer to other origins. */
const SAFE_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

/** The decoded pathname, or an HttpError(400) for one that could name something outside the served tree. */
export function safePathname(rawUrl: string | undefined): { url: URL; pathname: string } {
  if (!rawUrl || !rawUrl.startsWith('/') || rawUrl.startsWith('//')) throw new HttpError(400, 'bad request target');
  let url: URL;
  let pathname: string;
  try {
    url = new URL(rawUrl, 'http://x');
    pathname = decodeURIComponent(url.pathname);
  } catch {
    throw new HttpError(400, 'malformed URL');
  }
  // new URL() resolves plain ../ already; an encoded one (%2e%2e, %2f) shows only after decoding: refuse it.
  if (pathname.includes('\0') || pathname.includes('\\') || pathname.split('/').some((s) => s === '..' || s === '.')) {
    throw new HttpError(400, 'path traversal refused');
  }
  return { url, pathname };
}

export async function startHttpApp(options: HttpAppOptions): Promise<HttpApp> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => undefined);
  const signalPath = options.signalPath ?? '/signal';
  const routes = options.routes ?? [];
  const secure = options.tls !== undefined;
  const statics = options.pages
    ? sirv(options.pages, {
        dev: false, // the file list is read once: a lookup in it can never reach outside the directory
        etag: true,
        dotfiles: false,
        setHeaders(res, pathname) {
          // vite names assets by content hash: they never change; the pages must be revalidated.
          res.setHeader('cache-control', pathname.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
        },
      })
    : null;

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(SAFE_HEADERS)) res.setHeader(k, v);
    const { url, pathname } = safePathname(req.url);
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const matching = routes.flatMap((r) => {
      const match = r.path.exec(pathname);
      return match ? [{ r, match }] : [];
    });
    if (matching.length > 0) {
      const hit = matching.find((m) => m.r.method === method);
      if (!hit) {
        res.setHeader('allow', [...new Set(matching.map((m) => m.r.method))].join(', '));
        throw new HttpError(405, `${req.method} is not allowed on ${pathname}`);
      }
      await hit.r.handle({ req, res, url, match: hit.match, secure });
      return;
    }
    if (pathname === signalPath) throw new HttpError(426, `${signalPath} is the signaling WebSocket: connect with an upgrade`);
    if (pathname.startsWith('/api/')) throw new HttpError(404, `no API route ${pathname}`);
    if (method !== 'GET') {
      res.setHeader('allow', 'GET, HEAD');
      throw new HttpError(405, `${req.method} is not allowed on pages`);
    }
    // sirv parses Range without checking it (bytes=9-1 makes fs.createReadStream throw): pages never need one.
    delete req.headers.range;
    // sirv pipes a file stream without an 'error' listener: a file gone since the start must not end the process.
    res.once('pipe', (src: Readable) => src.once('error', () => res.destroy()));
    if (!statics) throw new HttpError(404, 'this server serves no pages');
    statics(req, res, () => {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    });
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    onRequest(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof HttpError ? err.message : 'internal error';
      if (!(err instanceof HttpError)) log(`${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A body the route never read (refused before it): the connection ends here rather than read it to its end.
      if (!req.complete) res.setHeader('connection', 'close');
      sendJson(res, status, { error: message });
    });
  };

  const http: Server | HttpsServer = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : createServer(handler);
  http.on('clientError', (err: Error, socket: Socket) => {
    log(`bad http request: ${err.message}`);
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    socket.destroy();
  });
  http.on('tlsClientError', (err: Error) => log(`TLS handshake failed: ${err.message}`));
  const signaling = attachSignaling(http, { path: signalPath, limits: options.limits, log });

  const port = await listen(http, options.port ?? 0, host);
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const urlHost = shown.includes(':') ? `[${shown}]` : shown;
  let closing: Promise<void> | null = null;
  return {
    url: `${secure ? 'https' : 'http'}://${urlHost}:${port}`,
    host,
    port,
    secure,
    signalPath,
    liveRooms: () => signaling.liveRooms(),
    stats: () => signaling.stats(),
    close() {
      closing ??= signaling.close().then(() => closeHttp(http));
      return closing;
    },
  };
}
