// The built pages (index.html, coordinator.html and their assets) for `tabswarm serve` and `tabswarm demo`: a vite
// build into .cache/serve-dist, redone only when a source is newer than the last build (the repository's dist/ is
// left alone). A build goes to a private directory first and is renamed into place, so a server (sirv reads the file
// list once) or a second process building at the same moment never sees a half-written tree.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from './engine';

export const PAGES_DIR = join(repoRoot, '.cache', 'serve-dist');
/** Written last into a finished build: the build's start time (ms since the epoch). */
const STAMP = '.built';
const SOURCES = ['src', 'shaders', 'public', 'index.html', 'coordinator.html', 'vite.config.ts', 'package-lock.json'];

/** The newest modification time (ms) of any file under the page sources. */
export function newestSource(root: string = repoRoot): number {
  let newest = 0;
  const visit = (path: string): void => {
    let st;
    try {
      st = statSync(path);
    } catch {
      return; // deleted while we looked (another helper's edit): not a source any more
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const s of SOURCES) visit(join(root, s));
  return newest;
}

/** The build's start time, or null when `dir` holds no finished build. */
function builtAt(dir: string): number | null {
  try {
    const t = Number(readFileSync(join(dir, STAMP), 'utf8'));
    return Number.isFinite(t) ? t : null;
  } catch {
    return null;
  }
}

/** True when `dir` holds a finished build newer than every source. */
export function pagesFresh(dir: string = PAGES_DIR): boolean {
  const t = builtAt(dir);
  return t !== null && existsSync(join(dir, 'index.html')) && t >= newestSource();
}

/** vite build of the pages into `outDir` (default .cache/serve-dist), unless it is already fresh. */
export async function ensurePages(log: (s: string) => void = () => undefined, outDir: string = PAGES_DIR): Promise<string> {
  if (pagesFresh(outDir)) return outDir;
  const start = Date.now();
  const tmp = `${outDir}.tmp-${process.pid}-${start}`;
  process.env.VITE_CONFIG_NATIVE_IGNORE_WARNING ??= 'true';
  const { build } = await import('vite');
  try {
    await build({ root: repoRoot, configFile: join(repoRoot, 'vite.config.ts'), logLevel: 'warn', build: { outDir: tmp, emptyOutDir: true } });
    await writeFile(join(tmp, STAMP), String(start));
    await mkdir(join(outDir, '..'), { recursive: true });
    // Swap in: an old tree is moved aside and removed (a server still reading it keeps its open files).
    const old = `${outDir}.old-${process.pid}-${start}`;
    if (existsSync(outDir)) await rename(outDir, old).catch(() => undefined);
    await rename(tmp, outDir).catch(async (e: NodeJS.ErrnoException) => {
      // Another process renamed its build in first: that one is as fresh as ours.
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
    });
    await rm(old, { recursive: true, force: true });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  log(`built the pages in ${((Date.now() - start) / 1000).toFixed(1)} s`);
  return outDir;
}
