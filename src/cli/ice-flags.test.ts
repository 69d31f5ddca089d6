import { describe, expect, it } from 'vitest';
import { parseServeConfig, SERVE_CONFIG_VERSION, type ServeConfig } from '../protocol/serve-config';
import { UsageError } from './args';
import { fetchServeConfig, iceFromFlags, roomFromServe, splitServeFlag } from './ice-flags';
import { candidateType, isNatFailure, NatTraversalError, natPeersOf, noCandidates } from '../net/nat-failure';

const FP = 'a'.repeat(64);
const served = (o: Partial<ServeConfig> = {}): ServeConfig =>
  parseServeConfig({
    version: SERVE_CONFIG_VERSION,
    signal: 'wss://swarm.example.org/signal',
    room: 'main',
    iceServers: [{ urls: 'turn:turn.example.org:3478', username: '1:tabswarm', credential: 'x/+=' }],
    iceTransportPolicy: 'all',
    turnTtlS: 3600,
    rooms: [{ room: 'main', coordinator: FP, peers: 2, token: false }],
    data: null,
    upload: true,
    ...o,
  });

describe('ICE flags', () => {
  it('loopback by default; STUN/TURN bind every interface; relay only', () => {
    expect(iceFromFlags({})).toEqual({ iceServers: [], iceTransportPolicy: 'all', bindAddress: '127.0.0.1' });
    const ice = iceFromFlags({ stun: ['stun:h:3478'], turn: ['turn:h:3478?transport=udp'], 'turn-user': 'u', 'turn-pass': 'p', 'relay-only': true });
    expect(ice).toEqual({
      iceServers: [{ urls: ['stun:h:3478'] }, { urls: ['turn:h:3478?transport=udp'], username: 'u', credential: 'p' }],
      iceTransportPolicy: 'relay',
      bindAddress: null,
    });
    expect(iceFromFlags({ stun: ['stun:h'], bind: '10.0.0.2' }).bindAddress).toBe('10.0.0.2');
    expect(iceFromFlags({ bind: 'any' }).bindAddress).toBeNull();
  });

  it('refuses careless and hostile input with a UsageError naming the flag', () => {
    const bad: Record<string, unknown>[] = [
      { stun: ['http://h'] },
      { turn: ['stun:h'], 'turn-user': 'u', 'turn-pass': 'p' },
      { turn: ['turn:h'] },
      { 'turn-user': 'u' },
      { 'relay-only': true, stun: ['stun:h'] },
      { bind: 'eth0' },
      { stun: [`stun:${'x'.repeat(10_000)}`] },
      { stun: ['stun:h 3478'] },
    ];
    for (const v of bad) expect(() => iceFromFlags(v), JSON.stringify(v).slice(0, 80)).toThrow(UsageError);
  });

  it('takes a serve config: its ICE servers and policy, its live room and coordinator', () => {
    const cfg = served({ iceTransportPolicy: 'relay' });
    expect(iceFromFlags({}, cfg)).toMatchObject({ iceTransportPolicy: 'relay', bindAddress: null });
    expect(roomFromServe(cfg, undefined, undefined)).toEqual({ room: 'main', coordinator: FP });
    expect(() => roomFromServe(cfg, 'other', undefined)).toThrow(/no coordinator is connected to room "other"/);
    expect(roomFromServe(served({ rooms: [{ room: 'r2', coordinator: FP, peers: 0, token: false }] }), undefined, undefined).room).toBe('r2');
  });

  it('an unreachable or non-serve URL is a clear error', async () => {
    await expect(fetchServeConfig('ftp://x')).rejects.toThrow(/not an http\(s\) URL/);
    await expect(fetchServeConfig('not a url')).rejects.toThrow(/is not a URL/);
    await expect(fetchServeConfig('http://127.0.0.1:1', 2000)).rejects.toThrow(/could not read http:\/\/127\.0\.0\.1:1\/api\/config/);
  });

  it('bare coordinator --serve still means a loopback server', () => {
    expect(splitServeFlag(['--serve', '--stages', '2'])).toEqual(['--serve-local', '--stages', '2']);
    expect(splitServeFlag(['--serve'])).toEqual(['--serve-local']);
    expect(splitServeFlag(['--serve', 'https://h'])).toEqual(['--serve', 'https://h']);
  });
});

describe('NAT traversal failure', () => {
  it('names both peers, the candidates and the remedy, and is recognised in text', () => {
    expect(candidateType('candidate:1 1 UDP 2122317823 10.0.0.2 50000 typ srflx raddr 0.0.0.0 rport 0')).toBe('srflx');
    expect(candidateType('garbage')).toBeNull();
    const e = new NatTraversalError('p1', 'p2', { ...noCandidates(), host: 1, srflx: 1 }, noCandidates(), 'ICE failed');
    expect(e.message).toMatch(/^NAT traversal failed between p1 and p2 \(ICE failed; candidates tried: p1 1 host\/1 srflx\/0 relay, p2 0 host/);
    expect(e.message).toMatch(/tabswarm serve --turn turn:HOST:3478 --turn-secret/);
    expect(isNatFailure(`status: ${e.message}`)).toBe(true);
    expect(natPeersOf(e.message)).toEqual(['p1', 'p2']);
    expect(isNatFailure('could not connect')).toBe(false);
  });
});
