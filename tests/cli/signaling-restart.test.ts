// Signaling server restart with real processes (docs/resilience.md, "Signaling server restart"): `npm run server`
// (signaling-server/main.ts) as its own process, `tabswarm coordinator` and two `tabswarm peer` processes (one per
// stage, Dawn / lavapipe). The server process is SIGKILLed right after step KILL_AT (no goodbye, no peer-left: the
// clients see their sockets die) and started again on the same port OUTAGE_MS later. Training continues: every
// client rejoins, the run finishes all its steps, everyone exits 0.
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, nodeProc, tabswarm, until, type Proc } from '../support/procs';

const ROOT = join(__dirname, '..', '..');
const STEPS = 10;
const KILL_AT = 3;
const OUTAGE_MS = 2000;
const TINY = ['--n-layer', '2', '--n-head', '2', '--n-embd', '32', '--block-size', '32', '--batch-size', '4', '--microbatches', '4'];
const RUN = ['--stages', '2', '--steps', String(STEPS), '--lr', '1e-2', '--warmup', '1', '--sample-chars', '0', '--eval-batches', '0', ...TINY];

/** A port nobody listens on now (the restarted server must come back on the same one). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const address = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function signalingServer(port: number): Promise<Proc> {
  const p = nodeProc([join(ROOT, 'bin', 'run-ts.mjs'), 'signaling-server/main.ts', '--port', String(port)]);
  await until(p, () => (p.out().includes('[signaling] ready:') ? true : null), 'signaling server ready');
  return p;
}

afterEach(() => killAll());

describe('signaling server restart (processes)', () => {
  it('the server process is SIGKILLed mid-run and restarted on its port: the run finishes every step, everyone exits 0', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}/`;
    const first = await signalingServer(port);
    const coordinator = tabswarm(['coordinator', '--signal', url, '--room', 'sigrestart', '--key', 'ephemeral', '--verbose', ...RUN]);
    const fp = await until(coordinator, () => /coordinator key fingerprint ([0-9a-f]{64})/.exec(coordinator.err())?.[1], 'fingerprint');
    const peerArgs = ['peer', '--signal', url, '--room', 'sigrestart', '--coordinator', fp, '--key', 'ephemeral', '--throughput', '1000'];
    const peers = [tabswarm(peerArgs), tabswarm(peerArgs)];

    await until(coordinator, () => (new RegExp(`\\] step ${KILL_AT}: loss`).test(coordinator.err()) ? true : null), `step ${KILL_AT}`);
    first.cp.kill('SIGKILL');
    await first.exited;
    const killedAt = performance.now();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    await signalingServer(port); // killed by afterEach
    const readyAt = performance.now();
    for (const p of peers) await until(p, () => /signaling reconnected after (\d+) ms/.exec(p.err())?.[1], 'peer reconnected');

    const rejoinedAt = performance.now();
    const end = await coordinator.exited;
    const exitedAt = performance.now();
    if (end.code !== 0) console.log(`coordinator stderr:\n${coordinator.err()}`);
    expect(end.code).toBe(0);
    const lines = coordinator.out().trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]) as { steps: number; first_loss: number; last_loss: number };
    expect(summary.steps).toBe(STEPS);
    expect(summary.last_loss).toBeLessThan(summary.first_loss);
    for (const p of peers) {
      const { code } = await p.exited;
      if (code !== 0) console.log(`peer stderr:\n${p.err()}`);
      expect(code).toBe(0);
      expect(p.err()).toMatch(/signaling connection lost \(1006/);
    }
    for (let s = 0; s < STEPS; s++) expect(coordinator.err()).toMatch(new RegExp(`\\] step ${s}: loss`));
    const stepMs = [...coordinator.err().matchAll(/\] step (\d+): loss \S+ norm \S+ scale \S+ (\d+) ms/g)].map((m) => [Number(m[1]), Number(m[2])]);
    const back = peers.map((p) => /signaling reconnected after (\d+) ms/.exec(p.err())?.[1]);
    console.log(
      `signaling restart (processes): server SIGKILLed after step ${KILL_AT}, restarted ${OUTAGE_MS} ms later, ` +
        `ready ${(readyAt - killedAt).toFixed(0)} ms after the kill; peers back after ${back.join(', ')} ms (${(rejoinedAt - killedAt).toFixed(0)} ms after the kill); ` +
        `coordinator exited ${(exitedAt - rejoinedAt).toFixed(0)} ms later; ` +
        `steps ${stepMs.map(([s, ms]) => `${s}:${ms}ms`).join(' ')}`,
    );
  }, 240_000);
});
