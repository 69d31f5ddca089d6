// Small HTTP helpers for the routes `tabswarm serve` plugs into its server (signaling-server/http-app.ts): a status
// error a handler throws, bounded request bodies, JSON and byte answers.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** Thrown by a route: the client gets `status` and `{ error: message }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The whole request body, at most `maxBytes`: a declared Content-Length above it is refused before a byte is read,
 * and a body that grows past it (chunked) is cut off; both 413. The connection is closed after such an answer (the
 * rest of the body is never read).
 */
export async function readBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    res.setHeader('connection', 'close');
    throw new HttpError(413, `request body of ${declared} bytes is over the limit of ${maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  return new Promise<Buffer>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        req.pause();
        res.setHeader('connection', 'close');
        reject(new HttpError(413, `request body is over the limit of ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', (err) => reject(new HttpError(400, `request body: ${err.message}`)));
    req.once('aborted', () => reject(new HttpError(400, 'request aborted')));
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendBytes(res: ServerResponse, bytes: Uint8Array, contentType: string, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': contentType, 'content-length': bytes.byteLength, ...headers });
  res.end(bytes);
}

/** Listens on `host`:`port` (0: an ephemeral port) and resolves with the port bound; a bind error rejects. */
export async function listen(http: Server | HttpsServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  return (http.address() as AddressInfo).port;
}
