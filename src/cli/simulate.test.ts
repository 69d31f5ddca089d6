import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildScenario } from '../sim/scenario';
import { UsageError } from './args';
import { limitsOf, simulate, simulateOne, writeReport } from './simulate';

const SUMMARY_KEYS = [
  'peers',
  'tokens_per_s',
  'ideal_tokens_per_s',
  'efficiency',
  'steps',
  'steps_lost',
  'microbatches_recomputed',
  'coordinator_cpu_ms_per_step',
  'control_msgs_per_s',
  'bytes_per_peer_per_step',
  'evicted_honest',
  'evicted_adversaries',
  'seconds_to_evict',
];

function quiet(): string[] {
  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.map(String).join(' ')));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  return out;
}

afterEach(() => vi.restoreAllMocks());

describe('tabswarm simulate', () => {
  it('prints the JSON summary as the last stdout line, the same for the same seed (but the measured CPU time)', async () => {
    const args = ['--peers', '10', '--stages', '2', '--hours', '0.01', '--seed', '4', '--json'];
    const a = quiet();
    expect(await simulate(args)).toBe(0);
    const last = JSON.parse(a[a.length - 1]) as Record<string, unknown>;
    for (const k of SUMMARY_KEYS) expect(last, k).toHaveProperty(k);
    expect(last.peers).toBe(10);
    expect(a).toHaveLength(1); // --json: nothing but the summary
    vi.restoreAllMocks();
    const b = quiet();
    expect(await simulate(args)).toBe(0);
    // Everything but the coordinator's CPU time, which is measured on this machine's clock, not simulated.
    const again = JSON.parse(b[b.length - 1]) as Record<string, unknown>;
    expect({ ...again, coordinator_cpu_ms_per_step: 0 }).toEqual({ ...last, coordinator_cpu_ms_per_step: 0 });
  }, 120_000);

  it('names the limits the summary has no field for', () => {
    const inv = { badSteps: [3], evictedAllAdversaries: true, evicted: [], restarts: 0, events: 1, virtualS: 1 };
    expect(limitsOf({ invariants: { ...inv, refused: { 'swarm-members: stage over 256 members': 4 } } })).toEqual([
      'the protocol refused 4 coordinator message(s): swarm-members: stage over 256 members',
      '1 step(s) lost or double-counted a microbatch',
    ]);
    expect(limitsOf({ invariants: { ...inv, badSteps: [], refused: {}, standby: { peers: 40, why: '40 because x' } } })).toEqual([
      'the coordinator kept up to 40 peers on standby: 40 because x',
    ]);
  });

  it('refuses a bad scenario as a usage error naming the flag', async () => {
    quiet();
    await expect(simulate(['--peers', 'lots'])).rejects.toThrow(UsageError);
    await expect(simulate(['--stages', '9'])).rejects.toThrow(/n_layer 4/);
    await expect(simulate(['--compress', 'act=topk:0.1'])).rejects.toThrow(/--compress/);
    await expect(simulate(['--config', '/nonexistent/scenario.json'])).rejects.toThrow(/--config: cannot read/);
  });

  it('writes report.md and report.svg for several sizes', async () => {
    quiet();
    const rows = [];
    for (const peers of [8, 16]) rows.push(await simulateOne(buildScenario({ stages: 2, hours: 0.01 }, { peers })));
    const dir = mkdtempSync(join(tmpdir(), 'tabswarm-sim-'));
    try {
      const w = writeReport(rows, dir);
      const md = readFileSync(w.md, 'utf8');
      expect(md).toContain('| peers | tokens/s |');
      expect(md.split('\n').filter((l) => /^\| (8|16) \|/.test(l))).toHaveLength(2);
      expect(readFileSync(w.svg, 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
