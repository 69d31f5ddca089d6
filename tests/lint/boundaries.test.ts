// The lint rules can fail: the boundary checker (dependency-cruiser with the repository's .dependency-cruiser.cjs)
// runs on a throw-away tree of deliberately wrong imports, and the import-style rule on wrong import lines.
// Nothing is written into src/: the fixture tree lives in a temporary directory.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Linter } from 'eslint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import relativeImportStyle from '../../eslint-rules/relative-import-style.js';

const ROOT = join(__dirname, '..', '..');

/** path -> source of the fixture tree. */
const FIXTURE: Record<string, string> = {
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'ESNext', moduleResolution: 'Bundler', strict: true } }),
  'src/ui/page.ts': 'export const page = 1;\n',
  'src/gpu/reads-ui.ts': "import { page } from '../ui/page';\nexport const x = page;\n",
  'src/coordinator/run.ts': 'export const run = 1;\n',
  'src/swarm/uses-coordinator.ts': "import { run } from '../coordinator/run';\nexport const y = run;\n",
  'src/net/a.ts': "import { b } from './b';\nexport const a = () => b;\n",
  'src/net/b.ts': "import { a } from './a';\nexport const b = () => a;\n",
  'src/gpu/ok.ts': 'export const ok = 1;\n',
  'src/model/fine.ts': "import { ok } from '../gpu/ok';\nexport const fine = ok;\n",
};

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tabswarm-boundaries-'));
  for (const [path, text] of Object.entries(FIXTURE)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('import boundaries (dependency-cruiser)', () => {
  it('fails on imports that cross a layer or close a cycle, naming the rule; allows a downward import', () => {
    const bin = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
    // The `err` report is what `npm run lint` prints: one `error <rule>: <from> → <to>` line per violation
    // (a cycle lists its path on the lines below).
    const r = spawnSync(process.execPath, [bin, '--config', join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'err', 'src'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 50_000,
    });
    const found = [...r.stdout.matchAll(/^\s*(\w+) ([\w-]+): (\S+) →[ \t]*(\S*)/gm)].map(
      ([, sev, rule, from, to]) => `${sev} ${rule}: ${from} -> ${to}`,
    );
    expect(r.status, `${r.stdout}\n${r.stderr}`).not.toBe(0);
    expect(found).toContain('error gpu-is-the-bottom: src/gpu/reads-ui.ts -> src/ui/page.ts');
    expect(found).toContain('error nothing-imports-ui: src/gpu/reads-ui.ts -> src/ui/page.ts');
    expect(found).toContain('error swarm-below-coordinator: src/swarm/uses-coordinator.ts -> src/coordinator/run.ts');
    expect(found.some((f) => f.startsWith('error no-circular: src/net/'))).toBe(true);
    expect(found.filter((f) => f.includes('src/model/fine.ts'))).toEqual([]);
    expect(r.status).toBe(found.length); // the exit status counts the errors: nothing else failed
  }, 60_000);
});

describe('import style (eslint-rules/relative-import-style)', () => {
  const config = [
    {
      plugins: { tabswarm: { rules: { 'relative-import-style': relativeImportStyle } } },
      rules: { 'tabswarm/relative-import-style': 'error' as const },
    },
  ];

  it("flags a relative import of a TypeScript module with a '.js' suffix and fixes it; leaves the others alone", () => {
    const code = [
      "import { a } from './a.js';",
      "export * from '../net/b.js';",
      "export { c } from './c.js';",
      "const d = import('./d.js');",
      "import { e } from './e';",
      "import code from '../../shaders/f.wgsl?raw';",
      "import { g } from 'some-package/g.js';",
      "import rule from './eslint-rules/relative-import-style.js';",
      'export { a, code, d, e, g, rule };',
    ].join('\n');
    const linter = new Linter({ configType: 'flat' });
    const messages = linter.verify(code, config, join(ROOT, 'fixture.js'));
    expect(messages.map((m) => `${m.line}:${m.ruleId}`)).toEqual([
      '1:tabswarm/relative-import-style',
      '2:tabswarm/relative-import-style',
      '3:tabswarm/relative-import-style',
      '4:tabswarm/relative-import-style',
    ]);
    const fixed = linter.verifyAndFix(code, config, join(ROOT, 'fixture.js'));
    expect(fixed.messages).toEqual([]);
    expect(fixed.output.split('\n').slice(0, 4)).toEqual([
      "import { a } from './a';",
      "export * from '../net/b';",
      "export { c } from './c';",
      "const d = import('./d');",
    ]);
  });
});
