// The signaling server: proof of key at join, rooms bound to a coordinator key, WebRTC offer/answer/candidate relay
// within a room, and the coordinator <-> peer control plane. Tensors never pass through here. Binds 127.0.0.1 unless
// told otherwise.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { Connection } from './connection';
import { DEFAULT_LIMITS, type ServerLimits } from './limits';
import { Rooms } from './rooms';

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

export async function startSignalingServer(options: SignalingServerOptions = {}): Promise<SignalingServer> {
  const host = options.host ?? '127.0.0.1';
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.log ?? (() => undefined);
  const rooms = new Rooms();
  const connections = new Set<Connection>();
  const pending = { count: 0 };
  const shutdown = { value: false };

  const http: Server = createServer((req, res) => {
    // A plain GET answers a health check; anything else must upgrade to a WebSocket.
    res.writeHead(req.method === 'GET' ? 200 : 405, { 'content-type': 'text/plain' });
    res.end('tabswarm signaling server\n');
  });
  const wss = new WebSocketServer({ server: http, maxPayload: limits.hardMaxBytes });
  // A failed upgrade or a broken client socket is that client's problem; never an unhandled 'error' event.
  wss.on('error', (err) => log(`websocket server error: ${err.message}`));
  wss.on('wsClientError', (err, socket) => {
    log(`bad websocket handshake: ${err.message}`);
    socket.destroy();
  });
  http.on('clientError', (err, socket) => {
    log(`bad http request: ${err.message}`);
    socket.destroy();
  });
  wss.on('connection', (ws) => {
    const conn = new Connection(ws, {
      rooms,
      limits,
      pending,
      shutdown,
      log,
    });
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

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  log(`signaling server listening on ws://${urlHost}:${port}/`);

  let closing: Promise<void> | null = null;
  return {
    url: `ws://${urlHost}:${port}/`,
    port,
    host,
    stats: () => ({ connections: connections.size, rooms: rooms.size }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(keepalive);
        shutdown.value = true; // the server leaves, not its members: no peer-left while it terminates them
        for (const conn of connections) conn.terminate();
        connections.clear();
        wss.close(() => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
      });
      return closing;
    },
  };
}
