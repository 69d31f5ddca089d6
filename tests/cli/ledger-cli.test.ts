// `tabswarm ledger verify` as a user runs it (a child process of bin/tabswarm.mjs): a signed export passes against
// its coordinator's fingerprint; an edited one, or the right file against another coordinator, exits 1 naming why.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/coordinator/ledger';
import { exportLedger } from '../../src/coordinator/ledger-export';
import { buildRun } from '../../src/coordinator/run-builder';
import { ephemeralIdentity } from '../../src/net/identity';

const run = promisify(execFile);
const bin = join(__dirname, '..', '..', 'bin', 'tabswarm.mjs');
const env = { ...process.env, TABSWARM_QUIET: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() };

async function tabswarm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { env, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

describe('tabswarm ledger verify', () => {
  it('accepts a signed export, refuses an edited one and a foreign coordinator, with a message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabswarm-ledger-'));
    const coord = await ephemeralIdentity();
    const member = await ephemeralIdentity();
    const r = buildRun({ steps: 2, microbatches: 2, 'batch-size': 2, 'block-size': 8, 'run-id': 'cli' }, 20);
    const ledger = new Ledger({ run: r, keyOf: (id) => (id === member.id ? member.publicKey : null) });
    ledger.work({ step: 0, entries: [{ peerId: member.id, stage: 0, forward: 2, backward: 2, validations: 0 }] });
    const text = await exportLedger(ledger, coord);
    const good = join(dir, 'ledger.json');
    writeFileSync(good, text);
    const ok = await tabswarm(['ledger', 'verify', good, '--coordinator', coord.fingerprint]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`OK, signed by coordinator ${coord.fingerprint}`);
    expect(ok.stdout).toContain(member.id);

    const edited = join(dir, 'edited.json');
    const credits = /"credits":"(\d+)"/.exec(text)?.[1] ?? '';
    writeFileSync(edited, text.replace(`"credits":"${credits}"`, `"credits":"${BigInt(credits) * 2n}"`));
    const bad = await tabswarm(['ledger', 'verify', edited, '--coordinator', coord.fingerprint]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/REFUSED: bad signature/);

    const other = await ephemeralIdentity();
    const foreign = await tabswarm(['ledger', 'verify', good, '--coordinator', other.fingerprint]);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain(`not by the expected ${other.fingerprint}`);

    const usage = await tabswarm(['ledger', 'verify', good]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--coordinator FP .* is required/);
  }, 120_000);
});
