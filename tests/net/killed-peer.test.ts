// A peer process killed with SIGKILL in the middle of a 64 MiB transfer: the receiver must notice within the
// stated bound and free the partial message.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SignalingServer } from '../../signaling-server/server';
import type { PartialDrop } from '../../src/net/reassembler';
import type { CloseInfo, Transport } from '../../src/net/transport';
import { idOf, nextEvent, nodePeer, startServer } from './helpers';

// Stated bound: heartbeat every 200 ms, dead after 1000 ms of silence, checked every 100 ms => <= 1.1 s, plus
// scheduling slack on a loaded 2-core machine.
const HEARTBEAT = { intervalMs: 200, deadAfterMs: 1000 };
const DETECTION_BOUND_MS = 2000;

let server: SignalingServer;
let child: ChildProcess | null = null;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await server?.close();
});

function waitForLine(proc: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`child did not print "${line}" within ${timeoutMs} ms: ${buf}`)), timeoutMs);
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.split('\n').includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => reject(new Error(`child exited (${code}) before "${line}": ${buf}`)));
  });
}

it('notices a SIGKILLed peer mid-transfer within the stated time and frees the partial message', async () => {
  child = spawn(process.execPath, ['bin/run-ts.mjs', 'tests/net/fixtures/streaming-peer.ts', server.url, 'kill', 'victim'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await waitForLine(child, 'ready', 30_000);

  const me = await nodePeer(server, 'kill', 'survivor', { transport: { heartbeat: HEARTBEAT } });
  const peerLeft = nextEvent((h) => me.signaling.on('peer-left', h), 30_000);
  const t: Transport = await me.network.connect(idOf('victim'));
  const drops: PartialDrop[] = [];
  t.onDrop((d) => drops.push(d));
  const closed = nextEvent<CloseInfo>((h) => t.onClose(h), 30_000);

  // Kill as soon as a 64 MiB message is partly received.
  await expect.poll(() => t.stats().pendingBytes, { timeout: 20_000, interval: 5 }).toBe(64 * 1024 * 1024);
  const partialChunks = t.stats().pendingMessages;
  expect(partialChunks).toBe(1);
  child.kill('SIGKILL');
  const killedAt = performance.now();
  await once(child, 'exit');

  const info = await closed;
  const detectedMs = performance.now() - killedAt;
  console.log(`[killed-peer] closed after ${detectedMs.toFixed(0)} ms: ${info.reason} (${info.detail})`);
  expect(['dead', 'channel']).toContain(info.reason);
  expect(detectedMs).toBeLessThan(DETECTION_BOUND_MS);
  expect(t.stats()).toMatchObject({ pendingMessages: 0, pendingBytes: 0 });
  expect(drops).toHaveLength(1);
  expect(drops[0]).toMatchObject({ reason: 'closed', bytes: 64 * 1024 * 1024 });
  expect(drops[0].receivedChunks).toBeLessThan(drops[0].chunkCount);
  // The signaling server announces the vanished peer too.
  expect(await peerLeft).toMatchObject({ peerId: idOf('victim'), role: 'peer' });
  me.close();
});
