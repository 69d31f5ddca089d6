// `tabswarm serve` as a browser and a peer see it (startServe on 127.0.0.1:0): the real vite build served by sirv,
// path traversal refused, /api/config valid with STUN/TURN and fresh TURN credentials, signaling through /signal,
// live rooms as coordinators come and go, and garbage on the socket that never takes the server down.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePages } from '../../src/cli/pages';
import { startServe, type ServeHandle } from '../../src/cli/serve';
import { nodeWebSocket } from '../../src/net/rtc-node';
import { SignalingClient } from '../../src/net/signaling-client';
import { parseServeConfig, type ServeConfig } from '../../src/protocol/serve-config';
import { testIdentity } from '../support/identity';
import { raw, rawTcp } from './helpers';

const SECRET = 'serve-test-secret';
let srv: ServeHandle;
let port: number;

beforeAll(async () => {
  // The shared, cached build (.cache/serve-dist): built once, reused while no source changes.
  const pages = await ensurePages();
  srv = await startServe({
    port: 0,
    pages,
    stun: ['stun:127.0.0.1:3478'],
    turn: ['turn:127.0.0.1:3478?transport=udp', 'turns:127.0.0.1:5349'],
    turnSecret: SECRET,
    turnTtlS: 600,
  });
  port = Number(new URL(srv.url).port);
}, 120_000);
afterAll(() => srv?.close());

async function config(headers: Record<string, string> = {}): Promise<ServeConfig> {
  const r = await raw(`${srv.url}/api/config`, { headers });
  expect(r.status).toBe(200);
  expect(r.headers['cache-control']).toBe('no-store');
  return parseServeConfig(JSON.parse(r.body.toString()));
}

/** Polls `f` until it returns a value (the server drops a member when its socket closes, a moment later). */
async function eventually<T>(f: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 250; i++) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`never: ${what}`);
}

describe('tabswarm serve: pages', () => {
  it('serves index.html, coordinator.html and a hashed asset, with safe headers', async () => {
    const index = await fetch(`${srv.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    const asset = /src="\/?(assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset, 'index.html names its script').toBeDefined();
    const coord = await fetch(`${srv.url}/coordinator.html`);
    expect(coord.status).toBe(200);
    expect(await coord.text()).toMatch(/<html/i);
    const js = await fetch(`${srv.url}/${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('cache-control')).toMatch(/immutable/);
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('lists no directory, hides dotfiles, and answers unknown paths and methods with a 4xx', async () => {
    expect((await raw(`${srv.url}/assets/`)).status).toBe(404);
    expect((await raw(`${srv.url}/.built`)).status).toBe(404);
    expect((await raw(`${srv.url}/nothing-here.html`)).status).toBe(404);
    expect((await raw(`${srv.url}/api/nothing`)).status).toBe(404);
    const post = await raw(`${srv.url}/index.html`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect((await raw(`${srv.url}/api/config`, { method: 'DELETE' })).status).toBe(405);
    // sirv would pass a reversed range to fs.createReadStream (which throws): the range is ignored instead.
    const ranged = await raw(`${srv.url}/index.html`, { headers: { range: 'bytes=9-1' } });
    expect(ranged.status).toBe(200);
  });

  it('refuses path traversal, plain or encoded', async () => {
    for (const path of [
      '/../package.json',
      '/assets/../../package.json',
      '/%2e%2e/package.json',
      '/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      '/..%2fpackage.json',
      '/..%5cpackage.json',
      '/%00index.html',
      '//etc/passwd',
      '/%E0%A4%A',
    ]) {
      const r = await raw(srv.url, { path });
      expect([400, 404], path).toContain(r.status);
      expect(r.body.toString(), path).not.toMatch(/"name": "tabswarm"|root:/);
    }
  });
});

describe('tabswarm serve: /api/config', () => {
  it('validates, names the ICE servers and hands out fresh TURN credentials (never the secret)', async () => {
    const before = Math.floor(Date.now() / 1000);
    const c = await config();
    expect(c.signal).toBe(`ws://127.0.0.1:${port}/signal`);
    expect(c.room).toBe('demo');
    expect(c.iceTransportPolicy).toBe('all');
    expect(c.turnTtlS).toBe(600);
    expect(c.upload).toBe(true);
    expect(c.data).toBeNull();
    expect(c.iceServers[0]).toEqual({ urls: ['stun:127.0.0.1:3478'] });
    const turn = c.iceServers[1];
    expect(turn.urls).toEqual(['turn:127.0.0.1:3478?transport=udp', 'turns:127.0.0.1:5349']);
    const expiry = Number(turn.username?.split(':')[0]);
    expect(turn.username).toMatch(/^\d+:tabswarm$/);
    expect(expiry).toBeGreaterThanOrEqual(before + 600);
    expect(expiry).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 600);
    expect(turn.credential).toBe(
      createHmac('sha1', SECRET)
        .update(turn.username ?? '')
        .digest('base64'),
    );
    expect(JSON.stringify(c)).not.toContain(SECRET);
    expect(await srv.config()).toMatchObject({ signal: srv.signalUrl, turnTtlS: 600 });
  });

  it('builds the signal URL from the Host a client used, and wss behind a TLS proxy; a bad Host is a 400', async () => {
    expect((await config({ host: 'swarm.example.org' })).signal).toBe('ws://swarm.example.org/signal');
    expect((await config({ host: 'swarm.example.org', 'x-forwarded-proto': 'https' })).signal).toBe('wss://swarm.example.org/signal');
    expect((await config({ host: '[::1]:9000' })).signal).toBe('ws://[::1]:9000/signal');
    for (const host of ['evil.org/x', 'a b', 'x'.repeat(300), 'evil.org:port']) {
      expect((await raw(`${srv.url}/api/config`, { headers: { host } })).status, host).toBe(400);
    }
  });
});

describe('tabswarm serve: signaling on /signal', () => {
  it('a client joins through /signal; the room is listed once its coordinator joins, with peers and token', async () => {
    const boss = await testIdentity('serve/boss');
    const opts = { WebSocket: nodeWebSocket, log: () => undefined, reconnect: { reconnectMs: 0 } };
    const coord = await SignalingClient.connect(srv.signalUrl, {
      room: 'serve-room',
      role: 'coordinator',
      identity: boss,
      token: 'let-me-in',
      ...opts,
    });
    const listed = await eventually(async () => (await config()).rooms.find((r) => r.room === 'serve-room'), 'room listed');
    expect(listed).toEqual({ room: 'serve-room', coordinator: boss.fingerprint, peers: 0, token: true });
    const peer = await SignalingClient.connect(srv.signalUrl, {
      room: 'serve-room',
      role: 'peer',
      coordinator: boss.fingerprint,
      identity: await testIdentity('serve/peer'),
      token: 'let-me-in',
      ...opts,
    });
    expect(peer.peerId).toMatch(/^[0-9a-f]+$/);
    await eventually(async () => ((await config()).rooms.find((r) => r.room === 'serve-room')?.peers === 1 ? true : undefined), 'one peer');
    coord.close();
    await eventually(async () => ((await config()).rooms.some((r) => r.room === 'serve-room') ? undefined : true), 'room gone with its coordinator');
    peer.close();
  });

  it('survives a malformed upgrade, an upgrade elsewhere and garbage on the socket', async () => {
    const noKey = await rawTcp(port, 'GET /signal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    expect(noKey).toMatch(/^HTTP\/1\.1 400/);
    const elsewhere = await rawTcp(
      port,
      'GET /index.html HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    expect(elsewhere).toMatch(/^HTTP\/1\.1 404/);
    expect(await rawTcp(port, 'GARBAGE \x00\x01\x02 nonsense\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await rawTcp(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]))).toMatch(/^(HTTP\/1\.1 400|$)/);
    const plain = await raw(`${srv.url}/signal`);
    expect(plain.status).toBe(426);
    // Still alive and serving.
    expect((await fetch(`${srv.url}/api/config`)).status).toBe(200);
  });
});
