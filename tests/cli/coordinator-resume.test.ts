// Coordinator restart with real processes (docs/resilience.md "Coordinator restart"): a signaling server (in this
// process), `tabswarm coordinator --state F --ledger L` and two `tabswarm peer` processes (one per stage, Dawn /
// lavapipe). The coordinator is SIGKILLed once its saved run reaches step KILL_AT (the file's content is the event),
// then restarted with `--resume`: it re-adopts the waiting peers and the run goes on from its step — no completed
// step re-done, the step reports and the ledger continue, every step finishes, everyone exits 0. And a peer whose
// coordinator never comes back exits 3 within --coordinator-wait, saying so.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server';
import { verifyLedger } from '../../src/coordinator/ledger-export';
import { killAll, tabswarm, until, type Proc } from '../support/procs';

const STEPS = 10;
const KILL_AT = 3; // saved steps when the coordinator is killed
const M = 4;
const TINY = ['--n-layer', '2', '--n-head', '2', '--n-embd', '32', '--block-size', '32', '--batch-size', '4', '--microbatches', String(M)];
const RUN = ['--stages', '2', '--steps', String(STEPS), '--lr', '1e-2', '--warmup', '1', '--sample-chars', '0', '--eval-batches', '0', ...TINY];

let server: SignalingServer | undefined;
let dir = '';

/** The saved run's step, or null while there is none (or it is being replaced). */
function savedStep(path: string): number | null {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { step: number }).step;
  } catch {
    return null;
  }
}

async function coordinatorStart(url: string, extra: string[]): Promise<{ p: Proc; fp: string }> {
  const p = tabswarm(['coordinator', '--signal', url, '--room', 'resume', '--key', join(dir, 'coordinator.key'), '--verbose', ...extra]);
  const fp = await until(p, () => /coordinator key fingerprint ([0-9a-f]{64})/.exec(p.err())?.[1], 'coordinator fingerprint');
  return { p, fp };
}

function peer(url: string, fp: string, waitS: number): Proc {
  return tabswarm([
    'peer',
    '--signal',
    url,
    '--room',
    'resume',
    '--coordinator',
    fp,
    '--key',
    'ephemeral',
    '--throughput',
    '1000',
    '--coordinator-wait',
    String(waitS),
  ]);
}

afterEach(async () => {
  await killAll();
  await server?.close();
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tabswarm coordinator --resume', () => {
  it('SIGKILLed mid-run and restarted with --resume: the run goes on from its step, reports and ledger continue, exit 0', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tabswarm-resume-'));
    server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
    const state = join(dir, 'run.json');
    const ledger = join(dir, 'ledger.json');
    const files = ['--state', state, '--ledger', ledger];
    const first = await coordinatorStart(server.url, [...RUN, ...files]);
    const peers = [peer(server.url, first.fp, 300), peer(server.url, first.fp, 300)];
    // The event: the saved run reached KILL_AT steps (the coordinator is then somewhere in the next step).
    await until(first.p, () => ((savedStep(state) ?? 0) >= KILL_AT ? true : null), 'saved run at step KILL_AT');
    first.p.cp.kill('SIGKILL');
    await first.p.exited;
    const saved = savedStep(state) ?? -1;
    const savedLedger = JSON.parse(readFileSync(ledger, 'utf8')) as { step: number; entries: { forwardMicrobatches: number }[] };
    // Both peers notice and wait (bounded, shown).
    for (const p of peers) await until(p, () => (/the coordinator left: waiting for it/.test(p.err()) ? true : null), 'peer waiting');
    const t0 = performance.now();
    const second = await coordinatorStart(server.url, ['--resume', ...files]);
    // Restart -> the next completed step (the resumed coordinator's saved run moves past `saved`).
    await until(second.p, () => ((savedStep(state) ?? 0) > saved ? true : null), 'first step after the restart');
    const restartToStepMs = performance.now() - t0;
    const end = await second.p.exited;
    if (end.code !== 0) console.log(`resumed coordinator stderr:\n${second.p.err()}`);
    expect(end.code).toBe(0);
    expect(second.p.err()).toContain(`resuming run`);
    const adopted = /re-adopted 2 member\(s\) at step (\d+), 0 joining from them; attempt (\d+) next/.exec(second.p.err());
    expect(adopted).not.toBeNull();
    const resumedAt = Number(adopted?.[1]);
    // The run goes on from its step: the saved one, or the one after it if the peers applied it before the kill.
    expect(resumedAt === saved || resumedAt === saved + 1).toBe(true);
    const lines = second.p.out().trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]) as { steps: number; first_loss: number; last_loss: number };
    // Step reports continue: the saved ones and the resumed coordinator's, one per step (none if the peers applied a
    // step the killed coordinator never saved: that step is not re-done).
    expect(summary.steps).toBe(STEPS - (resumedAt - saved));
    expect(Number.isFinite(summary.last_loss)).toBe(true);
    expect(summary.last_loss).toBeLessThan(summary.first_loss);
    // The ledger continues: the same key signs it, every step credited once (the unsaved applied step excepted).
    const fp = second.fp;
    expect(fp).toBe(first.fp);
    const v = await verifyLedger(readFileSync(ledger, 'utf8'), fp);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.ledger.step).toBe(STEPS);
    const credited = STEPS - (resumedAt - saved);
    for (const e of v.ledger.entries) expect(e.forwardMicrobatches).toBe(credited * M);
    expect(savedLedger.step).toBeLessThanOrEqual(saved);
    for (const p of peers) expect((await p.exited).code).toBe(0);
    console.log(
      `coordinator resume: killed with ${saved} steps saved, resumed at step ${resumedAt} (attempt ${adopted?.[2]}); restart -> next completed step ${(restartToStepMs / 1000).toFixed(1)} s`,
    );
  }, 240_000);

  it('a peer whose coordinator never returns exits 3 within --coordinator-wait, saying what happened', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tabswarm-resume-'));
    server = await startSignalingServer({ host: '127.0.0.1', port: 0 });
    const state = join(dir, 'run.json');
    const c = await coordinatorStart(server.url, [...RUN, '--state', state]);
    const p = peer(server.url, c.fp, 3);
    const q = peer(server.url, c.fp, 3);
    await until(c.p, () => ((savedStep(state) ?? 0) >= 2 ? true : null), 'saved run at step 2');
    c.p.cp.kill('SIGKILL');
    await c.p.exited;
    for (const x of [p, q]) {
      const { code } = await x.exited;
      expect(code).toBe(3);
      expect(x.err()).toMatch(/the coordinator of run \S+ left at step \d+ and did not return within 3 s/);
    }
  }, 180_000);
});
