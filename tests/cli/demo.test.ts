// `tabswarm demo` end to end, as a user runs it: a child process that starts the signaling server, a coordinator
// and contributors, trains, prints a sample and ends with a JSON summary line; it must exit 0 on its own.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');

interface Summary {
  steps: number;
  peers: number;
  stages: number;
  first_loss: number;
  last_loss: number;
  tokens_per_s: number;
  adversaries: string[];
  evicted: string[];
  ledger?: Record<string, number>;
}

async function runDemo(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'tabswarm.mjs'), 'demo', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr, ms: performance.now() - t0 };
}

function lastJson(stdout: string): Summary {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as Summary;
}

function check(s: Summary, expected: { steps: number; peers: number; stages: number }): void {
  expect(s.steps).toBe(expected.steps);
  expect(s.peers).toBe(expected.peers);
  expect(s.stages).toBe(expected.stages);
  expect(Number.isFinite(s.first_loss)).toBe(true);
  expect(Number.isFinite(s.last_loss)).toBe(true);
  expect(s.last_loss).toBeLessThan(s.first_loss);
  expect(s.tokens_per_s).toBeGreaterThan(0);
}

const TINY = [
  '--n-layer',
  '2',
  '--n-head',
  '2',
  '--n-embd',
  '32',
  '--block-size',
  '32',
  '--batch-size',
  '4',
  '--microbatches',
  '4',
  '--lr',
  '1e-2',
  '--warmup',
  '1',
  '--sample-chars',
  '40',
];

describe('tabswarm demo', () => {
  it('--node-peers: 4 `tabswarm peer` processes, 2 stages x 2 replicas, loss goes down, clean exit', async () => {
    const r = await runDemo(['--node-peers', '--no-pages', '--peers', '4', '--stages', '2', '--steps', '8', ...TINY], 150_000);
    if (r.code !== 0) console.log(`demo stderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    const s = lastJson(r.stdout);
    check(s, { steps: 8, peers: 4, stages: 2 });
    expect(r.stdout).toContain('--- sample after 8 steps ---');
    expect(r.stderr).toMatch(/join from another browser|tabswarm\.mjs peer --signal ws:\/\/127\.0\.0\.1:/);
    console.log(`demo --node-peers: ${(r.ms / 1000).toFixed(1)} s, ${JSON.stringify(s)}`);
  }, 180_000);

  it('--adversaries 1 --attack nan: the attacker is named in the summary and evicted; the run trains', async () => {
    const r = await runDemo(
      [
        '--node-peers',
        '--no-pages',
        '--peers',
        '3',
        '--stages',
        '1',
        '--steps',
        '4',
        '--aggregation',
        'trimmed-mean',
        '--strikes',
        '1',
        '--adversaries',
        '1',
        '--attack',
        'nan',
        ...TINY,
        '--sample-chars',
        '0',
        '--eval-batches',
        '0',
      ],
      150_000,
    );
    if (r.code !== 0) console.log(`demo stderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
    expect(r.code).toBe(0);
    const s = lastJson(r.stdout);
    check(s, { steps: 4, peers: 2, stages: 1 }); // the summary counts the members at the end: the 2 honest ones
    expect(s.adversaries).toHaveLength(1);
    expect(s.adversaries[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(s.evicted).toEqual(s.adversaries);
    // Its work was never verified: no credits (the ledger drops an evicted peer's unverified work).
    expect(s.ledger?.[s.adversaries[0]] ?? 0).toBe(0);
    expect(r.stderr).toMatch(/1 of them attack \(nan\)/);
    console.log(`demo --adversaries 1 --attack nan: ${(r.ms / 1000).toFixed(1)} s, ${JSON.stringify(s)}`);
  }, 180_000);

  it('--attack without --adversaries, or a bad mode: a usage error', async () => {
    const a = await runDemo(['--node-peers', '--no-pages', '--attack', 'nan'], 60_000);
    expect(a.code).not.toBe(0);
    expect(a.stderr).toMatch(/--attack needs --adversaries N/);
    const b = await runDemo(['--node-peers', '--no-pages', '--adversaries', '1', '--attack', 'flip'], 60_000);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/--attack: unknown attack "flip" \(one of nan, scale:K/);
  }, 120_000);

  // The tab mode runs in the system Chromium, which scripts/setup.sh installs like every browser suite's: it always runs.
  it('tabs: 2 headless Chromium tabs, 2 stages, a short run', async () => {
    const r = await runDemo(['--tabs', '2', '--stages', '2', '--steps', '4', ...TINY], 170_000);
    if (r.code !== 0) console.log(`demo stderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    const s = lastJson(r.stdout);
    check(s, { steps: 4, peers: 2, stages: 2 });
    expect(r.stderr).toMatch(/join from another browser on this machine \(WebGPU needed\): http:\/\/127\.0\.0\.1:\d+\/\?signal=/);
    console.log(`demo --tabs 2: ${(r.ms / 1000).toFixed(1)} s, ${JSON.stringify(s)}`);
  }, 180_000);
});
