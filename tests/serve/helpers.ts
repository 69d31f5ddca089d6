// Shared by the `tabswarm serve` suites: raw HTTP requests (what fetch will not send: a bad Host, a lying
// Content-Length, a malformed upgrade) and a tiny pages directory for suites that test the API, not the build.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request with node:http (any method, headers and body; a body written even if the server answers first). */
export function raw(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: Buffer | string; path?: string } = {},
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: o.path ?? `${u.pathname}${u.search}`, method: o.method ?? 'GET', headers: o.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Bytes on a raw TCP socket; resolves with everything the server sent until it closed (or `ms` passed). */
export function rawTcp(port: number, bytes: string | Buffer, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', done);
    s.on('error', done);
    s.write(bytes);
  });
}

/** A pages directory with an index, a coordinator page and one asset. */
export function tinyPages(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tabswarm-pages-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>contributor</title>');
  writeFileSync(join(dir, 'coordinator.html'), '<!doctype html><title>coordinator</title>');
  writeFileSync(join(dir, 'assets', 'app-abc123.js'), 'export const x = 1;\n');
  writeFileSync(join(dir, '.secret'), 'dotfile');
  return dir;
}
