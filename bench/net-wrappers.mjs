// Wrapper evaluation for issue 3 (not part of `npm run bench`): raw node-datachannel data channel vs simple-peer vs
// PeerJS, Node <-> Node in one process, 64 MiB per run. The wrappers are NOT project dependencies; install them
// outside the repo and point WRAPPER_DIR at that folder:
//   mkdir -p /tmp/wrapper-eval && (cd /tmp/wrapper-eval && npm init -y && npm i simple-peer@9 peerjs@1 peer@1)
//   unshare -n -- bash -c 'ip link set lo up && WRAPPER_DIR=/tmp/wrapper-eval node bench/net-wrappers.mjs'
// Both wrappers need the shims the loopback notes describe (bindAddress, plain-object SDP, candidates held until
// setLocalDescription resolves); PeerJS also needs its own signaling server and a global WebSocket.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { RTCPeerConnection as NdcPC, RTCSessionDescription, RTCIceCandidate } from 'node-datachannel/polyfill';

const dir = process.env.WRAPPER_DIR ?? '/tmp/wrapper-eval';
const req = createRequire(join(dir, 'package.json'));
const TOTAL = 64 * 1024 * 1024;
const MSG = 256 * 1024;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const HIGH = 8 * 1024 * 1024;
const LOW = 2 * 1024 * 1024;

class ShimPC extends NdcPC {
  #localSet = false;
  #held = [];
  constructor(config = {}) {
    super({ ...config, iceServers: [], bindAddress: '127.0.0.1' });
  }
  async createOffer() {
    const d = await super.createOffer();
    return { type: d.type, sdp: d.sdp };
  }
  async createAnswer() {
    const d = await super.createAnswer();
    return { type: d.type, sdp: d.sdp };
  }
  async setLocalDescription(d) {
    await super.setLocalDescription(d);
    this.#localSet = true;
    for (const e of this.#held.splice(0)) super.dispatchEvent(e);
  }
  dispatchEvent(e) {
    if (e.type === 'icecandidate' && !this.#localSet) {
      this.#held.push(e);
      return true;
    }
    return super.dispatchEvent(e);
  }
}
const wrtc = { RTCPeerConnection: ShimPC, RTCSessionDescription, RTCIceCandidate };
const mbps = (ms) => TOTAL / 1e6 / (ms / 1000);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- raw ----
async function rawPair() {
  const a = new ShimPC();
  const b = new ShimPC();
  const heldA = [];
  let answered = false;
  a.onicecandidate = (e) => e.candidate && (answered ? b.addIceCandidate(e.candidate) : heldA.push(e.candidate));
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const dc = a.createDataChannel('raw');
  const remote = new Promise((r) => (b.ondatachannel = (e) => r(e.channel)));
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  answered = true;
  for (const c of heldA) b.addIceCandidate(c);
  await new Promise((r) => (dc.readyState === 'open' ? r() : (dc.onopen = r)));
  const rdc = await remote;
  rdc.binaryType = 'arraybuffer';
  return { a, b, dc, rdc };
}
async function rawRun({ dc, rdc }) {
  let got = 0;
  const done = new Promise((r) => (rdc.onmessage = (e) => (got += e.data.byteLength) >= TOTAL && r()));
  dc.bufferedAmountLowThreshold = LOW;
  const msg = new Uint8Array(MSG);
  const t0 = performance.now();
  for (let sent = 0; sent < TOTAL; sent += MSG) {
    if (dc.bufferedAmount > HIGH) await new Promise((r) => (dc.onbufferedamountlow = r));
    dc.send(msg);
  }
  await done;
  return mbps(performance.now() - t0);
}

// ---- simple-peer ----
async function simplePair() {
  const Peer = req('simple-peer');
  const a = new Peer({ initiator: true, wrtc, trickle: true, config: { iceServers: [] } });
  const b = new Peer({ wrtc, trickle: true, config: { iceServers: [] } });
  a.on('signal', (d) => b.signal(d));
  b.on('signal', (d) => a.signal(d));
  await Promise.all([new Promise((r) => a.once('connect', r)), new Promise((r) => b.once('connect', r))]);
  return { a, b };
}
async function simpleRun({ a, b }, mode) {
  let got = 0;
  const done = new Promise((r) => {
    const h = (d) => {
      if ((got += d.byteLength) >= TOTAL) {
        b.off('data', h);
        r();
      }
    };
    b.on('data', h);
  });
  const msg = Buffer.alloc(MSG);
  const t0 = performance.now();
  for (let sent = 0; sent < TOTAL; sent += MSG) {
    if (mode === 'stream') {
      // The documented duplex-stream API: write() applies simple-peer's own backpressure (64 KiB high mark).
      if (!a.write(msg)) await new Promise((r) => a.once('drain', r));
    } else {
      // peer.send() has no backpressure; bufferedAmount is reachable only through the private _channel.
      if (a._channel.bufferedAmount > HIGH) await new Promise((r) => setTimeout(r, 5));
      a.send(msg);
    }
  }
  await done;
  return mbps(performance.now() - t0);
}

// ---- PeerJS ----
async function peerjsPair(serialization) {
  globalThis.WebSocket ??= req('ws').WebSocket;
  globalThis.RTCPeerConnection = ShimPC;
  globalThis.RTCSessionDescription = RTCSessionDescription;
  globalThis.RTCIceCandidate = RTCIceCandidate;
  const { ExpressPeerServer } = req('peer');
  const express = req('express');
  const app = express();
  const http = createServer(app);
  app.use('/p', ExpressPeerServer(http, { path: '/' }));
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  const port = http.address().port;
  const { Peer } = req('peerjs');
  const opts = { host: '127.0.0.1', port, path: '/p', secure: false, config: { iceServers: [] }, debug: 0 };
  const pa = new Peer('pa' + serialization, opts);
  const pb = new Peer('pb' + serialization, opts);
  await Promise.all([new Promise((r) => pa.on('open', r)), new Promise((r) => pb.on('open', r))]);
  const incoming = new Promise((r) => pb.on('connection', r));
  const ca = pa.connect(pb.id, { serialization, reliable: true });
  const cb = await incoming;
  await Promise.all([new Promise((r) => ca.on('open', r)), new Promise((r) => cb.on('open', r))]);
  return { ca, cb, http, pa, pb };
}
async function peerjsRun({ ca, cb }) {
  let got = 0;
  const done = new Promise((r) => {
    const h = (d) => {
      if ((got += d.byteLength) >= TOTAL) {
        cb.off('data', h);
        r();
      }
    };
    cb.on('data', h);
  });
  const msg = new Uint8Array(MSG);
  const t0 = performance.now();
  // DataConnection.send() never pushes back: whatever the channel cannot take is queued in JS and retried every
  // 50 ms. We pace on bufferedSize (its public queue length) so memory stays bounded like the other paths.
  for (let sent = 0; sent < TOTAL; sent += MSG) {
    while (ca.bufferSize > 4) await new Promise((r) => setTimeout(r, 5));
    ca.send(msg);
  }
  await done;
  return mbps(performance.now() - t0);
}

const results = {};
const rp = await rawPair();
const sp = await simplePair();
const pjRaw = await peerjsPair('raw');
const pjBin = await peerjsPair('binary');
const runs = { raw: [], 'simple-peer send': [], 'simple-peer stream': [], 'peerjs raw': [], 'peerjs binary': [] };
for (let i = 0; i < ROUNDS; i++) {
  runs.raw.push(await rawRun(rp));
  runs['simple-peer send'].push(await simpleRun(sp, 'send'));
  runs['simple-peer stream'].push(await simpleRun(sp, 'stream'));
  runs['peerjs raw'].push(await peerjsRun(pjRaw));
  runs['peerjs binary'].push(await peerjsRun(pjBin));
}
const raw = median(runs.raw);
for (const [k, v] of Object.entries(runs))
  results[k] = { medianMBps: +median(v).toFixed(1), vsRaw: +(median(v) / raw).toFixed(2), runs: v.map((x) => +x.toFixed(1)) };
console.table(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { 'MB/s': v.medianMBps, 'x raw': v.vsRaw, runs: v.runs.join(' ') }])));
console.log(JSON.stringify(results));
process.exit(0); // PeerJS's server leaves interval timers behind (notes)
