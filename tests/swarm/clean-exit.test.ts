// No process left hanging: a Node process that ran a swarm (server, coordinator, peers with GPU devices and WebRTC
// links) and closed it exits by itself, promptly.
import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';

it('a process that ran and closed a swarm exits on its own', async () => {
  const child = spawn(process.execPath, ['bin/run-ts.mjs', 'tests/swarm/fixtures/clean-exit.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let closedAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!closedAt && out.includes('closed')) closedAt = performance.now();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  expect(out).toContain('closed');
  expect(signal).toBeNull();
  expect(code).toBe(0);
  // The JS event loop is empty within milliseconds of the close (measured with getActiveResourcesInfo); the native
  // teardown of node-datachannel at process exit takes several more seconds on this loaded machine inside
  // `unshare -n` (tests/net/clean-exit.test.ts sees the same ~8-10 s), so only "exits by itself" is asserted tightly.
  const lag = performance.now() - closedAt;
  console.log(`swarm process exited ${lag.toFixed(0)} ms after closing everything`);
  expect(lag).toBeLessThan(25_000);
}, 70_000);
