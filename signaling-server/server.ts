// The signaling server: proof of key at join, rooms bound to a coordinator key, WebRTC offer/answer/candidate relay
// within a room, and the coordinator <-> peer control plane. Tensors never pass through here. Binds 127.0.0.1 unless
// told otherwise. `attachSignaling` puts the same server on a path of an existing http(s) server (`tabswarm serve`,
// signaling-server/http-app.ts); `startSignalingServer` is the standalone one (`npm run server`), on every path.

import { createServer, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { Connection } from './connection';
import { DEFAULT_LIMITS, type ServerLimits } from './limits';
import { Rooms, type LiveRoomInfo } from './rooms';
import { listen } from './http-util';

export interface SignalingServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  limits?: Partial<ServerLimits>;
  log?: (msg: string) => void;
}

export interface SignalingServer {
  /** ws://host:port/ */
  url: string;
  port: number;
  host: string;
  /** Live counts, for tests and logs. */
  stats(): { connections: number; rooms: number };
  /** Disconnects every client, stops listening and clears every timer; resolves when fully closed. */
  close(): Promise<void>;
}

export interface AttachOptions {
  /** Only upgrades to this path (e.g. '/signal') are taken; others get 404. Absent: every path. */
  path?: string;
  limits?: Partial<ServerLimits>;
  log?: (msg: string) => void;
}

/** The signaling WebSocket on an existing http(s) server; closing it leaves the http server to its owner. */
export interface AttachedSignaling {
  stats(): { connections: number; rooms: number };
  /** The rooms whose coordinator is connected now, newest first. */
  liveRooms(): LiveRoomInfo[];
  /** Disconnects every client (no peer-left: the server leaves, not its members) and stops the keepalive. */
  close(): Promise<void>;
}

/** Answers a refused upgrade with a plain HTTP status and closes the socket. */
function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  socket.destroy();
}

export function attachSignaling(http: Server | HttpsServer, options: AttachOptions = {}): AttachedSignaling {
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.log ?? (() => undefined);
  const rooms = new Rooms();
  const connections = new Set<Connection>();
  const pending = { count: 0 };
  const shutdown = { value: false };

  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.hardMaxBytes });
  // A failed upgrade or a broken client socket is that client's problem; never an unhandled 'error' event.
  wss.on('error', (err) => log(`websocket server error: ${err.message}`));
  wss.on('wsClientError', (err, socket) => {
    log(`bad websocket handshake: ${err.message}`);
    refuseUpgrade(socket, 400, 'Bad Request');
  });
  http.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy()); // a reset mid-handshake must not become an uncaught 'error'
    if (shutdown.value) return refuseUpgrade(socket, 503, 'Service Unavailable');
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://x').pathname;
    } catch {
      return refuseUpgrade(socket, 400, 'Bad Request');
    }
    if (options.path !== undefined && pathname !== options.path) return refuseUpgrade(socket, 404, 'Not Found');
    // ws validates the handshake itself (method, version, key) and answers a bad one with 400 (wsClientError).
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  wss.on('connection', (ws) => {
    const conn = new Connection(ws, { rooms, limits, pending, shutdown, log });
    connections.add(conn);
    ws.on('close', () => connections.delete(conn));
  });

  // Keepalive: a client that did not answer the previous ping is gone (e.g. a killed tab behind a NAT).
  const keepalive = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        conn.terminate();
        connections.delete(conn);
        continue;
      }
      conn.alive = false;
      try {
        conn.ping();
      } catch {
        conn.terminate(); // not open any more: it will never answer
        connections.delete(conn);
      }
    }
  }, limits.keepaliveMs);
  keepalive.unref();

  let closing: Promise<void> | null = null;
  return {
    stats: () => ({ connections: connections.size, rooms: rooms.size }),
    liveRooms: () => rooms.live(),
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(keepalive);
        shutdown.value = true; // the server leaves, not its members: no peer-left while it terminates them
        for (const conn of connections) conn.terminate();
        connections.clear();
        wss.close(() => resolve());
      });
      return closing;
    },
  };
}

/** Closes an http(s) server and every connection it still holds. */
export function closeHttp(http: Server | HttpsServer): Promise<void> {
  return new Promise<void>((resolve) => {
    http.close(() => resolve());
    http.closeAllConnections();
  });
}

export async function startSignalingServer(options: SignalingServerOptions = {}): Promise<SignalingServer> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => undefined);
  const http: Server = createServer((req, res) => {
    // A plain GET answers a health check; anything else must upgrade to a WebSocket.
    res.writeHead(req.method === 'GET' ? 200 : 405, { 'content-type': 'text/plain' });
    res.end('tabswarm signaling server\n');
  });
  http.on('clientError', (err, socket: Socket) => {
    log(`bad http request: ${err.message}`);
    socket.destroy();
  });
  const signaling = attachSignaling(http, { limits: options.limits, log });

  const port = await listen(http, options.port ?? 0, host);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  log(`signaling server listening on ws://${urlHost}:${port}/`);

  let closing: Promise<void> | null = null;
  return {
    url: `ws://${urlHost}:${port}/`,
    port,
    host,
    stats: () => signaling.stats(),
    close() {
      closing ??= signaling.close().then(() => closeHttp(http));
      return closing;
    },
  };
}
