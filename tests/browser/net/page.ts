// Test page for the network layer: exposes `window.net`, driven by Playwright from tests/net/browser.test.ts
// and bench/net.ts. Everything here is the production src/net code running on the browser's own WebRTC.

import { browserRtcFactory } from '../../../src/net/rtc-browser';
import { PeerNetwork } from '../../../src/net/peer-network';
import { acceptRaw, dialRaw } from '../../../src/net/raw-link';
import type { RtcRawChannel } from '../../../src/net/rtc-channel';
import { SignalingClient } from '../../../src/net/signaling-client';
import { tabIdentity } from '../../../src/ui/key-store';
import { createStore, get } from 'idb-keyval';
import type { IncomingTensor } from '../../../src/net/tensor';
import type { Transport } from '../../../src/net/transport';
import { DEFAULT_BACKPRESSURE, waitForRoom } from '../../../src/net/backpressure';
import { firstMismatchAsync, patternBytesAsync } from '../../net/pattern';

const factory = browserRtcFactory({ iceServers: [] });
let signaling: SignalingClient | null = null;
let network: PeerNetwork | null = null;
const links = new Map<string, Transport>();
const inbox = new Map<string, IncomingTensor[]>();
const waiters = new Map<string, (t: IncomingTensor) => void>();

function track(t: Transport): void {
  links.set(t.peerId, t);
  t.onTensor((x) => {
    const w = waiters.get(t.peerId);
    if (w) {
      waiters.delete(t.peerId);
      w(x);
    } else {
      const q = inbox.get(t.peerId) ?? [];
      q.push(x);
      inbox.set(t.peerId, q);
    }
  });
}

function link(peerId: string): Transport {
  const t = links.get(peerId);
  if (!t) throw new Error(`no link to ${peerId}`);
  return t;
}

function nextTensor(peerId: string): Promise<IncomingTensor> {
  const q = inbox.get(peerId);
  const t = q?.shift();
  if (t) return Promise.resolve(t);
  return new Promise((resolve) => waiters.set(peerId, resolve));
}

let raw: RtcRawChannel | null = null;

function waitForByte(ch: RtcRawChannel, value: number): Promise<void> {
  return new Promise((resolve) => {
    const off = ch.events.on('message', (m) => {
      if (m.byteLength === 1 && m[0] === value) {
        off();
        resolve();
      }
    });
  });
}
let rawSignaling: SignalingClient | null = null;

const api = {
  /** This tab's stored identity for `role` (src/ui/key-store.ts): its id. */
  async identity(role: 'peer' | 'coordinator'): Promise<string> {
    return (await tabIdentity(role)).id;
  },
  /** The stored private key of `role`'s slot: is it extractable? (It must not be.) */
  async storedKey(role: 'peer' | 'coordinator', slot: number): Promise<{ extractable: boolean; type: string } | null> {
    const keys = await get<CryptoKeyPair>(`tabswarm-identity/${role}/${slot}`, createStore('tabswarm-keys', 'identities'));
    return keys ? { extractable: keys.privateKey.extractable, type: keys.privateKey.type } : null;
  },
  /** Joins `room` (bound to the coordinator fingerprint `coordinator`) with a fresh key; resolves with this tab's id. */
  async join(url: string, room: string, coordinator: string): Promise<string> {
    signaling = await SignalingClient.connect(url, { room, coordinator, role: 'peer' });
    network = new PeerNetwork(signaling, factory);
    network.onConnection(track);
    return signaling.peerId;
  },
  async dial(peerId: string): Promise<number> {
    if (!network) throw new Error('join first');
    const t0 = performance.now();
    track(await network.connect(peerId));
    return performance.now() - t0;
  },
  async waitForLink(peerId: string, timeoutMs = 20_000): Promise<void> {
    const t0 = performance.now();
    while (!links.has(peerId)) {
      if (performance.now() - t0 > timeoutMs) throw new Error(`no link from ${peerId}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  },
  /** Sends a pattern tensor; resolves (ms) once handed to the channel. */
  async sendPattern(peerId: string, seed: number, size: number): Promise<number> {
    const data = await patternBytesAsync(seed, size);
    const t0 = performance.now();
    await link(peerId).sendTensor({ kind: 'act', dtype: 'u8', shape: [size], data, meta: { seed } });
    return performance.now() - t0;
  },
  /** Waits for the next tensor from peerId and checks it against the pattern; -1 means bit-identical. */
  async checkNext(peerId: string, seed: number, size: number): Promise<{ mismatch: number; size: number; meta: unknown }> {
    const t = await nextTensor(peerId);
    return { mismatch: await firstMismatchAsync(seed, t.bytes, size), size: t.bytes.byteLength, meta: t.meta };
  },
  /** Framed throughput: sends `total` bytes as tensors of `size`, resolves when the receiver acked by control. */
  async sendBulk(peerId: string, size: number, count: number): Promise<number> {
    const t = link(peerId);
    const data = new Uint8Array(size);
    const acked = new Promise<void>((resolve) => {
      const off = t.onControl((m) => {
        if (m.type === 'status' && m.state === 'bulk-done') {
          off();
          resolve();
        }
      });
    });
    const t0 = performance.now();
    for (let i = 0; i < count; i++) await t.sendTensor({ kind: 'act', dtype: 'u8', shape: [size], data });
    await acked;
    return performance.now() - t0;
  },
  expectBulk(peerId: string, count: number): void {
    const t = link(peerId);
    let n = 0;
    waiters.delete(peerId);
    const off = t.onTensor(() => {
      inbox.delete(peerId);
      if (++n === count) {
        off();
        t.sendControl({ type: 'status', state: 'bulk-done' });
      }
    });
  },
  async rtt(peerId: string, n: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await link(peerId).ping());
    return out;
  },
  stats(peerId: string) {
    return link(peerId).stats();
  },
  closeInfo(peerId: string): unknown {
    return link(peerId).closeInfo;
  },
  isOpen(peerId: string): boolean {
    return link(peerId).isOpen;
  },
  // ---- raw data channel (benchmark baseline) ----
  async rawJoin(url: string, room: string, coordinator: string): Promise<string> {
    rawSignaling = await SignalingClient.connect(url, { room, coordinator, role: 'peer' });
    return rawSignaling.peerId;
  },
  async rawDial(peerId: string): Promise<void> {
    if (!rawSignaling) throw new Error('rawJoin first');
    raw = await dialRaw(rawSignaling, factory, peerId);
  },
  async rawAccept(): Promise<void> {
    if (!rawSignaling) throw new Error('rawJoin first');
    raw = await acceptRaw(rawSignaling, factory);
  },
  /**
   * Raw throughput: `count` messages of `size` bytes under the same backpressure policy as the framed path;
   * resolves (ms) when the receiver (rawServe) acks the last byte with a 1-byte message of value 2.
   */
  async rawSend(size: number, count: number): Promise<number> {
    const ch = raw;
    if (!ch) throw new Error('no raw link');
    ch.setLowWaterMark(DEFAULT_BACKPRESSURE.lowWaterMark);
    const msg = new Uint8Array(size).fill(9);
    const acked = waitForByte(ch, 2);
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      if (ch.bufferedAmount > DEFAULT_BACKPRESSURE.highWaterMark) await waitForRoom(ch, DEFAULT_BACKPRESSURE);
      ch.send(msg);
    }
    await acked;
    return performance.now() - t0;
  },
  /** Receiver side of the raw link: echoes 1-byte pings, acks every `target` bytes of bulk data. */
  rawServe(target: number): void {
    const ch = raw;
    if (!ch) throw new Error('no raw link');
    let got = 0;
    ch.events.on('message', (m) => {
      if (m.byteLength === 1) {
        ch.send(m);
        return;
      }
      got += m.byteLength;
      if (got >= target) {
        got = 0;
        ch.send(new Uint8Array([2]));
      }
    });
  },
  async rawRtt(n: number): Promise<number[]> {
    const ch = raw;
    if (!ch) throw new Error('no raw link');
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const back = waitForByte(ch, 1);
      const t0 = performance.now();
      ch.send(new Uint8Array([1]));
      await back;
      out.push(performance.now() - t0);
    }
    return out;
  },
  close(): void {
    network?.close();
    signaling?.close();
    raw?.close();
    rawSignaling?.close();
  },
};

declare global {
  interface Window {
    net: typeof api;
  }
}
window.net = api;
document.title = 'net-ready';
