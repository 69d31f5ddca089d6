// `tabswarm demo --node-peers` under churn (issue 10): peer processes SIGKILLed mid-run from outside, as a person
// would with kill(1). The demo logs each child's pid and stage ("node-K (pid P) is peer ID, stage S"); the test kills
// by those pids once the live table has printed a few steps.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const STEPS = 8;
const KILL_AFTER = 3; // steps done when the kills go out

const TINY = ['--n-layer', '2', '--n-head', '2', '--n-embd', '32', '--block-size', '32', '--batch-size', '4', '--microbatches', '4'];

interface Summary {
  steps: number;
  peers: number;
  stages: number;
  first_loss: number;
  last_loss: number;
}

/** Runs the demo with 2 stages; after KILL_AFTER steps, SIGKILLs the pids pick() chooses from stage -> pids. */
async function demoKilling(
  peers: number,
  sampleChars: number,
  pick: (byStage: Map<number, number[]>) => number[],
  extra: string[] = [],
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; killed: number[]; ms: number }> {
  const t0 = performance.now();
  const args = ['--node-peers', '--no-pages', '--peers', String(peers), '--stages', '2', '--steps', String(STEPS), ...TINY];
  const rest = ['--lr', '1e-2', '--warmup', '1', '--sample-chars', String(sampleChars), '--eval-batches', '0', ...extra];
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'tabswarm.mjs'), 'demo', ...args, ...rest], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  let stdout = '';
  let stderr = '';
  const killed: number[] = [];
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (killed.length > 0 || ![...stdout.matchAll(/^step +(\d+)\/\d+ /gm)].some((m) => Number(m[1]) >= KILL_AFTER)) return;
    const byStage = new Map<number, number[]>();
    for (const m of stderr.matchAll(/node-\d+ \(pid (\d+)\) is peer [0-9a-f]+, stage (\d+)/g)) {
      byStage.set(Number(m[2]), [...(byStage.get(Number(m[2])) ?? []), Number(m[1])]);
    }
    for (const pid of pick(byStage)) {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr, killed, ms: performance.now() - t0 };
}

describe('tabswarm demo --node-peers: peer deaths are churn', () => {
  it('--peers 6 --stages 2: one peer of each stage SIGKILLed mid-run; all steps finish, sample from the survivors, exit 0', async () => {
    const r = await demoKilling(6, 40, (byStage) => [...byStage.values()].map((pids) => pids[0]));
    if (r.code !== 0) console.log(`demo stderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
    expect(r.killed).toHaveLength(2); // one of each stage, 2 of the 6 processes
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stderr.match(/exited with signal SIGKILL during the run/g)).toHaveLength(2);
    const lines = r.stdout.trim().split('\n');
    const s = JSON.parse(lines[lines.length - 1]) as Summary;
    expect(s.steps).toBe(STEPS);
    expect(s.stages).toBe(2);
    expect(s.peers).toBe(6); // everyone who was a member of some step: the 2 dead took part in the first steps
    expect(Number.isFinite(s.first_loss)).toBe(true);
    expect(Number.isFinite(s.last_loss)).toBe(true);
    expect(s.last_loss).toBeLessThan(s.first_loss);
    expect(r.stdout).toContain(`--- sample after ${STEPS} steps ---`); // the weights came from the survivors
    expect(r.stdout).toMatch(/\(gone\)/); // the live table shows the dead peers as gone
    console.log(`demo churn (2 of 6 peers SIGKILLed after step ${KILL_AFTER}): ${(r.ms / 1000).toFixed(1)} s, ${JSON.stringify(s)}`);
  }, 180_000);

  it('--peers 3 --stages 2: the only replica of stage 0 SIGKILLed; the run pauses, then fails with the coordinator error, exit 1, no hang', async () => {
    // Nobody brings a checkpoint of stage 0 back: after --restore-wait the run stops (docs/resilience.md "Stage loss").
    const r = await demoKilling(3, 0, (byStage) => byStage.get(0) ?? [], ['--restore-wait', '5']);
    expect(r.killed.length).toBeGreaterThan(0);
    expect(r.signal).toBeNull(); // it exited by itself (the test's 170 s SIGKILL did not fire)
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/stage 0 has no live replica/);
    console.log(`demo stage loss: ${(r.ms / 1000).toFixed(1)} s`);
  }, 180_000);
});
