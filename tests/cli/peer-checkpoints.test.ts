// `tabswarm peer --checkpoint-dir DIR` (docs/resilience.md, "Checkpoints"): two real peer processes (S=2 x R=1),
// the signaling server and the coordinator in this process, checkpoints every 2 steps. After step 3 one peer gets
// SIGTERM: it saves its stage as it is, says so, and exits 0; its directory holds checkpoints whose params are the ones
// it reported in step-done, the newest the state it stopped at. `--help` documents the flag.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSignalingServer } from '../../signaling-server/server';
import { CheckpointDir } from '../../src/cli/checkpoint-dir';
import { Coordinator, type StepReport } from '../../src/coordinator/coordinator';
import { nodeWebSocket } from '../../src/net/rtc-node';
import { connectSwarm } from '../../src/protocol/control-codec';
import { digestFloats } from '../../src/model/digest';
import { testIdentity } from '../support/identity';
import { killAll, peerIdOf, peerProc, type Proc } from '../support/procs';
import { LOG, tinyRun } from '../swarm/harness';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'tabswarm.mjs');

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function spawnPeer(url: string, room: string, coordinator: string, dir: string): Proc {
  const p = peerProc(url, room, coordinator, ['--key', 'ephemeral', '--checkpoint-dir', dir, ...(LOG ? ['--verbose'] : [])]);
  if (LOG) p.cp.stderr?.on('data', (d: Buffer) => LOG?.(d.toString().trimEnd()));
  return p;
}

describe('tabswarm peer --checkpoint-dir', () => {
  it('--help documents it', () => {
    const r = spawnSync(process.execPath, [BIN, 'peer', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toMatch(/--checkpoint-dir DIR[\s\S]*~\/\.tabswarm\/checkpoints\/<peer id>\/[\s\S]*none/);
  });

  it('saves every 2 steps, and on SIGTERM saves the stage as it is and exits 0', async () => {
    const run = tinyRun(
      'peer-ckpt',
      4,
      [
        [0, 2],
        [2, 4],
      ],
      { steps: 400, checkpoint: { every: 2, keep: 3 } },
    );
    const dir = await mkdtemp(join(tmpdir(), 'tabswarm-peer-ckpt-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => server.close());
    const room = 'peer-ckpt';
    const sig = await connectSwarm(server.url, {
      room,
      role: 'coordinator',
      identity: await testIdentity(`coordinator/${room}`),
      WebSocket: nodeWebSocket,
      log: LOG,
    });
    cleanups.push(() => sig.close());
    const stepDone = new Map<string, string>(); // `${peer}/${step}` -> params digest
    sig.on('control', ({ from, msg }) => {
      if (msg.type === 'step-done') stepDone.set(`${from}/${msg.step}`, msg.digest);
    });
    const coordinator = new Coordinator(sig, { run, minPeers: 2, log: LOG, stepTimeoutMs: 60_000, readyTimeoutMs: 60_000 });
    cleanups.push(() => coordinator.close());
    void coordinator.finished().catch(() => undefined); // it loses a stage below and is closed at the end
    const kids = [0, 1].map((i) => spawnPeer(server.url, room, sig.coordinatorFingerprint, join(dir, `p${i}`)));
    cleanups.push(() => killAll());
    const stageOf = new Map<string, number>();
    coordinator.events.on('assigned', ({ peerId, stage }) => stageOf.set(peerId, stage));

    // SIGTERM the first-stage peer once step 3 is reported (its saves after steps 2 and 4 are due or done).
    await new Promise<void>((resolve) =>
      coordinator.events.on('step', (r: StepReport) => {
        if (r.step === 3) resolve();
      }),
    );
    const victim = kids.find((k) => stageOf.get(peerIdOf(k) ?? '') === 0)!;
    const id = peerIdOf(victim)!;
    victim.cp.kill('SIGTERM');
    const exit = await victim.exited;
    if (exit.code !== 0) console.log(victim.err());
    expect(exit).toEqual({ code: 0, signal: null });
    expect(victim.err()).toContain(`checkpoint saved in ${join(dir, `p${kids.indexOf(victim)}`)}`);

    const store = new CheckpointDir(join(dir, `p${kids.indexOf(victim)}`));
    const all = await store.list();
    // Beside its own stage's checkpoints it may keep a custody copy of stage 1 (docs/resilience.md "Custody"): the
    // coordinator has each stage's newest checkpoint copied to a peer of another stage.
    expect(all.every((r) => r.runId === 'peer-ckpt' && (r.stage === 0 || r.stage === 1))).toBe(true);
    const refs = all.filter((r) => r.stage === 0);
    expect(refs.length).toBeGreaterThanOrEqual(2);
    expect(refs.length).toBeLessThanOrEqual(3);
    expect(refs[0].step).toBeGreaterThanOrEqual(4);
    // Every checkpoint but the exit one falls on the schedule; each holds the params it reported after that step.
    expect(refs.slice(1).every((r) => r.step % 2 === 0)).toBe(true);
    for (const r of refs) {
      const ck = await store.load(r);
      expect(ck && digestFloats(ck.params)).toBe(stepDone.get(`${id}/${r.step - 1}`));
    }
    expect((await readdir(join(dir, `p${kids.indexOf(victim)}`, 'peer-ckpt'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 120_000);
});
