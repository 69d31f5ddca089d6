// `tabswarm --help` and the README's CLI reference, against the command registry (src/cli/commands.ts): every
// registered command has one line in `tabswarm --help` and in the README, and its own `--help` exits 0 with its flags.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commands, readmeReference } from '../../src/cli/commands';
import { killAll, tabswarm, type Proc } from '../support/procs';

const ROOT = join(__dirname, '..', '..');

async function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p: Proc = tabswarm(args);
  const { code } = await p.exited;
  return { code, out: p.out(), err: p.err() };
}

afterAll(() => killAll());

describe('tabswarm --help', () => {
  it('lists every registered command on one line with its summary, and no flags', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    for (const c of commands) {
      const mine = lines.filter((l) => new RegExp(`^ {2}${c.name} +\\S`).test(l));
      expect(mine, c.name).toHaveLength(1);
      expect(mine[0].endsWith(`  ${c.summary}`), mine[0]).toBe(true);
    }
    // One line per command: no command's flags leak into the overview.
    expect(lines.filter((l) => /^\s+--/.test(l))).toEqual([]);
    expect(lines.length).toBeLessThan(commands.length + 10);
  });

  it('every summary is one short line', () => {
    expect(commands.length).toBeGreaterThanOrEqual(9);
    expect(new Set(commands.map((x) => x.name)).size).toBe(commands.length);
    for (const c of commands) expect(c.summary, c.name).toMatch(/^\S[^\n]{8,118}$/);
  });

  it('`tabswarm <command> --help` exits 0 with that command`s full help; `help <command>` is the same', async () => {
    for (const c of commands) {
      const r = await run([c.name, '--help']);
      expect(r.code, `${c.name} --help: ${r.err}`).toBe(0);
      expect(r.out.trim()).toBe(c.help.trim());
      expect(r.out.startsWith(`tabswarm ${c.name}`), c.name).toBe(true);
    }
    const h = await run(['help', 'peer']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('--coordinator FP');
  }, 120_000);

  it('an unknown command or none: exit 2 and the overview', async () => {
    const u = await run(['trian']);
    expect(u.code).toBe(2);
    expect(u.err).toMatch(/unknown command "trian"[\s\S]*\n {2}train +train a GPT/);
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.out).toContain('usage: tabswarm <command> [flags]');
  });
});

describe('README', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  it('opens with `npm run demo` and `npm test`', () => {
    const first = /```bash\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const cmds = first
      .split('\n')
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter(Boolean);
    expect(cmds.slice(0, 2)).toEqual(['npm run demo', 'npm test']);
  });

  it('its CLI reference is the registry (regenerate with readmeReference() in src/cli/commands.ts)', () => {
    const block = /<!-- cli-commands:start[^>]*-->\n([\s\S]*?)\n<!-- cli-commands:end -->/.exec(readme)?.[1];
    expect(block, `README.md needs, between its cli-commands markers:\n${readmeReference()}`).toBe(readmeReference());
    for (const c of commands) expect(readme).toContain(`| \`tabswarm ${c.name}\` |`);
  });
});
