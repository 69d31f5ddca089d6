// Identities on the wire (docs/trust.md), against the real signaling server over loopback and real node-datachannel
// WebRTC: proof of key at join, ids derived from keys, rooms bound to the coordinator key (before, during and after
// its absence), squatting, join tokens, a reload replacing its old connection, and links bound to identities.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignalingServer } from '../../signaling-server/server';
import { ephemeralIdentity, sha256Hex, toBase64Url } from '../../src/net/identity';
import { nodeRtcFactory, nodeWebSocket } from '../../src/net/rtc-node';
import { SignalingClient } from '../../src/net/signaling-client';
import { CLOSE_NO_TOKEN, CLOSE_REPLACED, joinText } from '../../src/net/signaling-protocol';
import type { Transport } from '../../src/net/transport';
import { testIdentity } from '../support/identity';
import { join, joinMessage, nextEvent, nodePeer, rawSocket, roomFingerprint, startServer } from './helpers';

let server: SignalingServer;
beforeAll(async () => {
  server = await startServer({ limits: { maxStrikes: 50 } });
});
afterAll(() => server.close());

const connect = (o: Omit<Parameters<typeof SignalingClient.connect>[1], 'WebSocket'>) =>
  SignalingClient.connect(server.url, { WebSocket: nodeWebSocket, log: () => undefined, ...o });

describe('proof of key at join', () => {
  it('refuses a missing, forged or replayed signature, and a malformed key', async () => {
    const me = await testIdentity('signer');
    const s = await rawSocket(server);
    const coordinator = roomFingerprint('keys');
    const good = JSON.parse(await joinMessage(s.nonce, 'keys', me)) as Record<string, unknown>;
    const send = async (msg: Record<string, unknown>) => {
      s.send(JSON.stringify(msg));
      return s.next();
    };
    const { sig: _sig, ...unsigned } = good;
    expect(await send(unsigned)).toMatchObject({ type: 'error', code: 'invalid' });
    expect(await send({ ...good, sig: toBase64Url(new Uint8Array(64).fill(7)) })).toMatchObject({ type: 'error', code: 'bad-signature' });
    // The same key's signature of another nonce (a join replayed from another connection).
    const replayed = await me.sign(joinText('A'.repeat(43), 'keys', 'peer', coordinator));
    expect(await send({ ...good, sig: replayed })).toMatchObject({ type: 'error', code: 'bad-signature' });
    // Signed for another room or role: the signature covers them.
    expect(await send({ ...good, room: 'keys2' })).toMatchObject({ type: 'error', code: 'bad-signature' });
    // 65 bytes that are not a point on the curve.
    const notAPoint = new Uint8Array(65).fill(1);
    notAPoint[0] = 4;
    expect(await send({ ...good, key: toBase64Url(notAPoint) })).toMatchObject({ type: 'error', code: 'bad-signature' });
    // After all that, the honest join on the same connection works, under the key's id.
    expect(await send(good)).toMatchObject({ type: 'joined', peerId: me.id, coordinator });
    s.ws.close();
  });

  it("derives the id from the key: nobody can claim another's id", async () => {
    const victim = await join(server, 'ids', 'victim');
    const attacker = await ephemeralIdentity();
    const s = await rawSocket(server);
    // The victim's public key with the attacker's signature.
    const msg = JSON.parse(await joinMessage(s.nonce, 'ids', attacker)) as Record<string, unknown>;
    s.send(JSON.stringify({ ...msg, key: victim.identity.publicKey }));
    expect(await s.next()).toMatchObject({ type: 'error', code: 'bad-signature' });
    // Its own key gets its own id.
    s.send(JSON.stringify(msg));
    expect(await s.next()).toMatchObject({ type: 'joined', peerId: attacker.id });
    expect(attacker.id).not.toBe(victim.peerId);
    expect(victim.peers.has(victim.peerId)).toBe(false);
    s.ws.close();
    victim.close();
  });
});

describe('rooms bound to the coordinator key', () => {
  it('after the coordinator leaves, another key cannot take its place; the real one comes back', async () => {
    const boss = await testIdentity('boss');
    const room = 'bound';
    const coord = await connect({ room, role: 'coordinator', identity: boss });
    const peer = await connect({ room, role: 'peer', coordinator: boss.fingerprint, identity: await testIdentity('worker') });
    expect(peer.coordinatorId).toBe(boss.id);
    expect(peer.keyOf(boss.id)).toBe(boss.publicKey);
    const left = nextEvent((h) => peer.on('peer-left', h));
    coord.close();
    await left;
    expect(peer.coordinatorId).toBeNull();
    const impostor = await ephemeralIdentity();
    // Claiming the room's fingerprint with another key; and the same room name under the impostor's own key is
    // another room, which the waiting peer never sees.
    const s = await rawSocket(server);
    s.send(await joinMessage(s.nonce, room, impostor, 'coordinator', { coordinator: boss.fingerprint }));
    expect(await s.next()).toMatchObject({ type: 'error', code: 'not-coordinator' });
    const squat = await connect({ room, role: 'coordinator', identity: impostor });
    await peer.ping();
    expect(peer.coordinatorId).toBeNull();
    expect(peer.peers.has(impostor.id)).toBe(false);
    // The real coordinator comes back with its key.
    const back = nextEvent((h) => peer.on('peer-joined', h));
    const coord2 = await connect({ room, role: 'coordinator', identity: boss });
    expect(await back).toEqual({ peerId: boss.id, role: 'coordinator', key: boss.publicKey });
    expect(peer.coordinatorId).toBe(boss.id);
    for (const c of [peer, coord2, squat]) c.close();
    s.ws.close();
  });

  it('squatting: an attacker creating "demo" first does not block the real coordinator\'s "demo"', async () => {
    const attacker = await ephemeralIdentity();
    const real = await ephemeralIdentity();
    const squat = await connect({ room: 'demo', role: 'coordinator', identity: attacker });
    const lured = await connect({ room: 'demo', role: 'peer', coordinator: attacker.fingerprint });
    const coord = await connect({ room: 'demo', role: 'coordinator', identity: real });
    const peer = await connect({ room: 'demo', role: 'peer', coordinator: real.fingerprint });
    expect(peer.coordinatorId).toBe(real.id);
    expect([...peer.peers.keys()]).toEqual([real.id]);
    expect(lured.coordinatorId).toBe(attacker.id);
    // Control from the squatter reaches only its own room.
    let leaked = false;
    peer.on('control', () => (leaked = true));
    squat.sendControl({ type: 'shutdown', reason: 'evil' }, '*');
    await nextEvent((h) => lured.on('control', h));
    await peer.ping();
    expect(leaked).toBe(false);
    for (const c of [squat, lured, coord, peer]) c.close();
  });

  it('a peer of a room with a token must present it; members without it go when such a coordinator arrives', async () => {
    const boss = await ephemeralIdentity();
    const room = 'tokens';
    const early = await connect({ room, role: 'peer', coordinator: boss.fingerprint });
    const earlyWithToken = await connect({ room, role: 'peer', coordinator: boss.fingerprint, token: 'open-sesame' });
    const closed = nextEvent<{ code: number }>((h) => early.on('close', h));
    const coord = await connect({ room, role: 'coordinator', identity: boss, token: 'open-sesame' });
    expect((await closed).code).toBe(CLOSE_NO_TOKEN);
    await expect.poll(() => coord.peers.has(early.peerId)).toBe(false);
    expect(coord.peers.has(earlyWithToken.peerId)).toBe(true);
    await expect(connect({ room, role: 'peer', coordinator: boss.fingerprint })).rejects.toMatchObject({ code: 'bad-token' });
    await expect(connect({ room, role: 'peer', coordinator: boss.fingerprint, token: 'open-sesame!' })).rejects.toMatchObject({
      code: 'bad-token',
    });
    const ok = await connect({ room, role: 'peer', coordinator: boss.fingerprint, token: 'open-sesame' });
    expect(ok.coordinatorId).toBe(boss.id);
    // The server keeps the hash only: the coordinator may give it directly.
    const coord2 = await connect({ room: 'tokens2', role: 'coordinator', identity: boss, tokenHash: await sha256Hex('t2') });
    await expect(connect({ room: 'tokens2', role: 'peer', coordinator: boss.fingerprint, token: 'x' })).rejects.toMatchObject({ code: 'bad-token' });
    for (const c of [earlyWithToken, coord, ok, coord2]) c.close();
  });

  it('the same key joining again (a reload) replaces its old connection', async () => {
    const me = await testIdentity('reloader');
    const other = await join(server, 'reload', 'other');
    const first = await join(server, 'reload', 'reloader');
    const firstClosed = nextEvent<{ code: number }>((h) => first.on('close', h));
    const left = nextEvent((h) => other.on('peer-left', h));
    const joined = nextEvent((h) => other.on('peer-joined', h));
    const second = await join(server, 'reload', 'reloader');
    expect(second.peerId).toBe(me.id);
    expect((await firstClosed).code).toBe(CLOSE_REPLACED);
    expect(await left).toMatchObject({ peerId: me.id });
    expect(await joined).toMatchObject({ peerId: me.id });
    expect(other.peers.get(me.id)).toBe('peer');
    const got = nextEvent((h) => second.on('signal', h));
    other.sendSignal(me.id, 'after-reload', { kind: 'abort' });
    expect(await got).toMatchObject({ from: other.peerId, connId: 'after-reload' });
    other.close();
    second.close();
  });
});

describe('data channels bound to identities (node-datachannel)', () => {
  /** A room member that answers nothing itself: it sends offers/answers by hand. */
  async function forger(room: string) {
    const sig = await join(server, room, `forger-${room}`);
    const pc = nodeRtcFactory()();
    pc.createDataChannel('tabswarm/1');
    await pc.setLocalDescription(await pc.createOffer());
    const sdp = pc.localDescription?.sdp ?? '';
    return { sig, pc, sdp };
  }

  it("refuses an offer whose auth is forged, not the sender's, or signs another DTLS fingerprint", async () => {
    const room = 'dtls';
    const b = await nodePeer(server, room, 'honest-b');
    const refused: { peerId: string; reason: string }[] = [];
    b.network.events.on('refused', (r) => refused.push(r));
    let linked = false;
    b.network.onConnection(() => (linked = true));
    const f = await forger(room);
    const victim = await testIdentity('honest-a'); // a member the forger would like to pass for
    const aborts: string[] = [];
    f.sig.on('signal', (ev) => ev.data.kind === 'abort' && aborts.push(ev.connId));
    // 1. Random bytes as auth.
    f.sig.sendSignal(b.signaling.peerId, 'forged1', { kind: 'offer', sdp: f.sdp, auth: toBase64Url(new Uint8Array(64).fill(3)) });
    // 2. Someone else's valid signature over this attempt (the forger holds no key of theirs: it is the victim's).
    const text = `tabswarm-dtls\nforged2\n${f.sig.peerId}\n${b.signaling.peerId}\n${f.sdp
      .split(/\r?\n/)
      .filter((l) => l.startsWith('a=fingerprint:'))
      .join('\n')}`;
    f.sig.sendSignal(b.signaling.peerId, 'forged2', { kind: 'offer', sdp: f.sdp, auth: await victim.sign(text) });
    // 3. Its own signature, but over another certificate's fingerprint than the SDP it sends.
    const otherSdp = f.sdp.replace(/a=fingerprint:sha-256 ([0-9A-F]{2})/, (_m, h: string) => `a=fingerprint:sha-256 ${h === '00' ? '01' : '00'}`);
    expect(otherSdp).not.toBe(f.sdp);
    const ownAuth = await f.sig.identity.sign(text.replace('forged2', 'forged3'));
    f.sig.sendSignal(b.signaling.peerId, 'forged3', { kind: 'offer', sdp: otherSdp, auth: ownAuth });
    await expect.poll(() => aborts.sort()).toEqual(['forged1', 'forged2', 'forged3']);
    expect(refused.map((r) => r.peerId)).toEqual([f.sig.peerId, f.sig.peerId, f.sig.peerId]);
    expect(refused.every((r) => r.reason.includes('not signed by its key'))).toBe(true);
    expect(linked).toBe(false);
    // The forger's own honest signature over its real SDP would be accepted: the check is the signature, not the peer.
    const honest = await nodePeer(server, room, 'honest-c');
    const incoming = nextEvent<Transport>((h) => b.network.onConnection(h), 30_000);
    await honest.network.connect(b.signaling.peerId);
    expect((await incoming).peerId).toBe(honest.signaling.peerId);
    f.pc.close();
    f.sig.close();
    b.close();
    honest.close();
  });

  it('the dialer refuses a forged answer', async () => {
    const room = 'dtls-answer';
    const a = await nodePeer(server, room, 'dialer', { connectTimeoutMs: 5000, retries: 0 });
    const evil = await join(server, room, 'evil-answerer');
    evil.on('signal', async (ev) => {
      if (ev.data.kind !== 'offer') return;
      const pc = nodeRtcFactory()();
      await pc.setRemoteDescription({ type: 'offer', sdp: ev.data.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      evil.sendSignal(ev.from, ev.connId, { kind: 'answer', sdp: pc.localDescription?.sdp ?? '', auth: toBase64Url(new Uint8Array(64).fill(9)) });
      setTimeout(() => pc.close(), 2000);
    });
    const err = await a.network.connect(evil.peerId).catch((e: unknown) => e as Error);
    expect(String(err)).toMatch(/answer from .* is not signed by its key/);
    a.close();
    evil.close();
  });

  it('the accept policy refuses links from peers it does not admit', async () => {
    const room = 'accept';
    const b = await nodePeer(server, room, 'gatekeeper');
    // The admitted peer dials with the network's defaults (retries cover libdatachannel's intermittent setup failures);
    // the stranger's single short attempt is enough to be refused.
    const friend = await nodePeer(server, room, 'friend');
    const stranger = await nodePeer(server, room, 'stranger', { connectTimeoutMs: 3000, retries: 0 });
    b.network.setAccept((id) => id === friend.signaling.peerId);
    const refused: string[] = [];
    b.network.events.on('refused', (r) => refused.push(r.peerId));
    const links: string[] = [];
    b.network.onConnection((t) => links.push(t.peerId));
    await expect(stranger.network.connect(b.signaling.peerId)).rejects.toThrow(/not accepted/);
    await friend.network.connect(b.signaling.peerId);
    await expect.poll(() => links).toEqual([friend.signaling.peerId]);
    expect(refused).toEqual([stranger.signaling.peerId]);
    for (const p of [b, friend, stranger]) p.close();
  });
});
