// `tabswarm serve` over TLS and as a command: a self-signed certificate made by openssl in the test, https and wss on
// one port checked against that CA, a failed TLS handshake that leaves the server up, the CLI's flags (--cert/--key,
// --turn-secret-file, --pages, --no-upload), the URLs it prints, a clean exit on SIGINT, and its usage errors.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type ServeHandle } from '../../src/cli/serve';
import { parseServeConfig } from '../../src/protocol/serve-config';
import { killAll, tabswarm, until } from '../support/procs';
import { tinyPages } from './helpers';

let dir: string;
let ca: string;
let srv: ServeHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tabswarm-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
  srv = await startServe({ port: 0, pages: tinyPages(), tls: { cert: ca, key: readFileSync(join(dir, 'key.pem')) } });
});
afterAll(async () => {
  await srv?.close();
  await killAll();
});

function httpsGet(url: string, withCa = true): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, withCa ? { ca } : {}, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('tabswarm serve over TLS', () => {
  it('serves pages and /api/config over https, and the signaling challenge over wss, on one port', async () => {
    expect(srv.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(srv.signalUrl).toBe(`${srv.url.replace('https:', 'wss:')}/signal`);
    const page = await httpsGet(`${srv.url}/coordinator.html`);
    expect(page).toEqual({ status: 200, body: '<!doctype html><title>coordinator</title>' });
    const c = parseServeConfig(JSON.parse((await httpsGet(`${srv.url}/api/config`)).body));
    expect(c.signal).toBe(srv.signalUrl);
    const ws = new WebSocket(srv.signalUrl, { ca });
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d) => resolve(String(d)));
      ws.once('error', reject);
    });
    expect(JSON.parse(first)).toMatchObject({ type: 'challenge' });
    ws.close();
  });

  it('a client that does not trust the certificate fails its handshake; plain http on the port is refused; the server stays up', async () => {
    await expect(httpsGet(`${srv.url}/`, false)).rejects.toThrow(/self[- ]signed|certificate/i);
    const port = Number(new URL(srv.url).port);
    await new Promise<void>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', rejectUnauthorized: false, minVersion: 'TLSv1', maxVersion: 'TLSv1' });
      s.on('error', () => resolve());
      s.on('secureConnect', () => (s.destroy(), resolve()));
    });
    await expect(fetch(`${srv.url.replace('https:', 'http:')}/`)).rejects.toThrow();
    expect((await httpsGet(`${srv.url}/index.html`)).status).toBe(200);
  });
});

describe('tabswarm serve (the command)', () => {
  it('prints the URLs to open, answers over TLS with TURN from a secret file, and exits 0 on SIGINT', async () => {
    const secretFile = join(dir, 'turn-secret');
    writeFileSync(secretFile, 'from-a-file\n');
    const p = tabswarm([
      'serve',
      '--port',
      '0',
      '--pages',
      tinyPages(),
      '--cert',
      join(dir, 'cert.pem'),
      '--key',
      join(dir, 'key.pem'),
      '--turn',
      'turn:127.0.0.1:3478',
      '--turn-secret-file',
      secretFile,
      '--relay-only',
      '--room',
      'lab',
      '--no-upload',
    ]);
    const base = await until(p, () => /contributors open: (https:\/\/127\.0\.0\.1:\d+)\/\n.*coordinator page/.exec(p.err())?.[1], 'the URLs');
    expect(p.err()).toContain(`coordinator page:  ${base}/coordinator.html`);
    const c = parseServeConfig(JSON.parse((await httpsGet(`${base}/api/config`)).body));
    expect(c).toMatchObject({ room: 'lab', iceTransportPolicy: 'relay', upload: false, turnTtlS: 3600 });
    expect(c.iceServers[0].username).toMatch(/^\d+:tabswarm$/);
    expect(JSON.stringify(c)).not.toContain('from-a-file');
    p.cp.kill('SIGINT');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.err()).toContain('closing');
  }, 60_000);

  it('usage errors name the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['--turn', 'turn:x:3478'], /--turn needs --turn-secret/],
      [['--relay-only'], /--relay-only needs a TURN server/],
      [['--cert', 'x.pem'], /--cert and --key go together/],
      [['--stun', 'http://x'], /--stun http:\/\/x: expected/],
      [['--public-url', 'https://x.org/sub'], /--public-url .*no path/],
      [['--vocab', 'full', '--data', 'f.txt'], /--vocab applies to --tokenizer gpt2 only/],
    ];
    // Side by side: each is a whole process start (tsx) that exits at once.
    const runs = cases.map(([args]) => tabswarm(['serve', '--port', '0', '--pages', tinyPages(), ...args]));
    const exits = await Promise.all(runs.map((p) => p.exited));
    cases.forEach(([args, message], i) => {
      expect(exits[i].code, args.join(' ')).toBe(2);
      expect(runs[i].err(), args.join(' ')).toMatch(message);
    });
  }, 120_000);
});
