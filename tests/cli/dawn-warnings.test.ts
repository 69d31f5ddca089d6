// Dawn's limit warnings (src/gpu/native-stderr.ts): gone from a terminal, a pipe and a log file of its own; every other
// line written to fd 2 in the same window is kept, in order; left alone where stderr is shared with stdout's file.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseIcd } from '../../src/gpu/node-gpu';
import { isDawnLimitWarning } from '../../src/gpu/native-stderr';

const ROOT = join(__dirname, '..', '..');
const PROBE = `node bin/run-ts.mjs tests/support/dawn-probe.ts`;
const dir = mkdtempSync(join(tmpdir(), 'tabswarm-dawn-warnings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A shell command line; resolves with what it printed on stdout (stderr merged by the command itself). */
function sh(cmd: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const cp = spawn('bash', ['-c', cmd], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let out = '';
    cp.stdout.on('data', (d: Buffer) => (out += d.toString()));
    cp.on('exit', (code) => resolve({ code, out: out.replace(/\r/g, '') }));
  });
}

const LIMIT = /artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit/;
const FILTERED = ['before', 'Warning: some other native warning', 'after 42', 'probe ok'];

describe("Dawn's limit warnings", () => {
  it('isDawnLimitWarning matches exactly the two lines', () => {
    const line = (k: string) =>
      `Warning: maxDynamic${k}BuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.`;
    expect(isDawnLimitWarning(line('Uniform'))).toBe(true);
    expect(isDawnLimitWarning(line('Storage'))).toBe(true);
    expect(isDawnLimitWarning(line('Sampler'))).toBe(false);
    expect(isDawnLimitWarning(`[x] ${line('Uniform')}`)).toBe(false);
    expect(isDawnLimitWarning(`${line('Uniform')} and more`)).toBe(false);
    expect(isDawnLimitWarning('Warning: maxStorageBufferBindingSize artificially reduced')).toBe(false);
  });

  it('through a pipe: only those two lines are dropped, the rest is kept in order', async () => {
    const r = await sh(`${PROBE} filter 2>&1 | cat`);
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toEqual(FILTERED);
  });

  it('on a terminal (script(1)) and into a log file of its own: the same', async () => {
    const t = await sh(`script -qec '${PROBE} filter' /dev/null`);
    expect(t.out.trim().split('\n')).toEqual(FILTERED);
    const log = join(dir, 'err.log');
    const f = await sh(`${PROBE} filter 2>${log}`);
    expect(f.out.trim()).toBe('probe ok');
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(FILTERED.slice(0, 3));
  }, 30_000);

  it('stderr on the same file as stdout (>log 2>&1): nothing is reopened, every line stays', async () => {
    const log = join(dir, 'both.log');
    await sh(`${PROBE} filter >${log} 2>&1`);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines.filter((l) => LIMIT.test(l))).toHaveLength(2);
    expect(lines).toContain('Warning: some other native warning');
  });

  it('the real Dawn: none on a pipe; TABSWARM_DAWN_WARNINGS=1 shows them where the driver clamps (lavapipe)', async () => {
    const quiet = await sh(`${PROBE} dawn 2>&1 | cat`);
    expect(quiet.out).toContain('[gpu] Vulkan ICD');
    expect(quiet.out).toContain('probe ok');
    expect(quiet.out).not.toMatch(LIMIT);
    const loud = await sh(`${PROBE} dawn 2>&1 | cat`, { TABSWARM_DAWN_WARNINGS: '1' });
    expect(loud.out).toContain('probe ok');
    // Mesa lavapipe reports 1000000 dynamic buffers per layout: Dawn clamps and warns (SwiftShader reports few: it does not).
    if (chooseIcd().source === 'lavapipe') expect(loud.out.match(new RegExp(LIMIT, 'g'))).toHaveLength(2);
  }, 60_000);
});
