// Done when (issue 11, "Your own data"): a run on a user's text file with GPT-2 BPE trains in tabs and Node peers
// alike. `tabswarm demo` as a user runs it, on a small text of our own (not tinyshakespeare) written to a temp dir:
// the Node peers bring the file and check its hashes; the tabs fetch the splits from the demo's server
// (/api/data/<sha>/) and check them. And a peer with another file refuses to train, naming both hashes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, tabswarm, until } from '../support/procs';

const dir = mkdtempSync(join(tmpdir(), 'tabswarm-bpe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => killAll());

// About 5 KB of plain English: a kitchen notebook, varied enough for a few hundred distinct BPE tokens.
const subjects = ['The baker', 'My neighbour', 'A tired cyclist', 'The old ferryman', 'Our teacher', 'The night nurse', 'A street musician'];
const verbs = ['carried', 'painted', 'forgot', 'repaired', 'counted', 'borrowed', 'watered', 'described'];
const objects = [
  'a blue umbrella',
  'seven copper kettles',
  'the broken lantern',
  'three jars of plum jam',
  'a map of the harbour',
  'the garden gate',
];
const endings = ['before the rain came.', 'while the radio hummed.', 'and nobody noticed.', 'for the third time this week.', 'with great care.'];
const TEXT = Array.from(
  { length: 110 },
  (_, i) => `${subjects[i % 7]} ${verbs[(i * 3) % 8]} ${objects[(i * 5) % 6]} ${endings[(i * 7) % 5]}${i % 4 === 3 ? '\n\n' : ' '}`,
).join('');
const FILE = join(dir, 'notebook.txt');
writeFileSync(FILE, TEXT);

const TINY = ['--n-layer', '2', '--n-head', '2', '--n-embd', '32', '--block-size', '32', '--batch-size', '4', '--microbatches', '2'];
const RUN = [...TINY, '--lr', '1e-2', '--warmup', '1', '--sample-chars', '20', '--eval-batches', '4'];

interface Summary {
  steps: number;
  first_loss: number;
  last_loss: number;
  val_loss: number | null;
  tokens_per_s: number;
}

async function demo(args: string[]): Promise<{ s: Summary; err: string; out: string }> {
  const p = tabswarm(['demo', ...args]);
  const { code } = await p.exited;
  if (code !== 0) console.log(`demo stderr:\n${p.err()}\nstdout:\n${p.out()}`);
  expect(code).toBe(0);
  const lines = p.out().trim().split('\n');
  return { s: JSON.parse(lines[lines.length - 1]) as Summary, err: p.err(), out: p.out() };
}

function trained(s: Summary, steps: number): void {
  expect(s.steps).toBe(steps);
  expect(Number.isFinite(s.first_loss)).toBe(true);
  expect(Number.isFinite(s.last_loss)).toBe(true);
  expect(s.last_loss).toBeLessThan(s.first_loss);
  expect(s.val_loss).not.toBeNull();
  expect(Number.isFinite(s.val_loss ?? Number.NaN)).toBe(true);
}

describe("a run on a user's text file with BPE", () => {
  it('trains on Node peers (each brings the file, hashes checked); val_loss on the held-out split', async () => {
    const { s, out } = await demo([
      '--node-peers',
      '--no-pages',
      '--peers',
      '2',
      '--stages',
      '2',
      '--steps',
      '4',
      '--data',
      FILE,
      '--tokenizer',
      'gpt2',
      ...RUN,
    ]);
    trained(s, 4);
    expect(out).toContain('--- sample after 4 steps ---');
    console.log(`bpe demo --node-peers: ${JSON.stringify(s)}`);
  }, 120_000);

  it('trains in tabs: they fetch train.u32 from the demo server and check its sha256', async () => {
    const { s } = await demo(['--tabs', '2', '--stages', '2', '--steps', '3', '--data', FILE, '--tokenizer', 'gpt2', ...RUN]);
    trained(s, 3);
    console.log(`bpe demo --tabs 2: ${JSON.stringify(s)}`);
  }, 150_000);

  it("a peer whose file is not the run's refuses to train and exits 1, naming the file and both hashes", async () => {
    const coord = tabswarm([
      'coordinator',
      '--serve',
      '--key',
      'ephemeral',
      '--state',
      'none',
      '--stages',
      '1',
      '--steps',
      '2',
      '--data',
      FILE,
      '--tokenizer',
      'gpt2',
      ...TINY,
    ]);
    const fp = await until(coord, () => /fingerprint ([0-9a-f]{64})/.exec(coord.err())?.[1], 'coordinator fingerprint');
    const url = await until(coord, () => /--signal (ws:\/\/\S+)/.exec(coord.err())?.[1], 'signal URL');
    const other = join(dir, 'other.txt');
    writeFileSync(other, TEXT.replace('umbrella', 'parasol'));
    const peer = tabswarm([
      'peer',
      '--signal',
      url,
      '--room',
      'demo',
      '--coordinator',
      fp,
      '--key',
      'ephemeral',
      '--throughput',
      '1000',
      '--checkpoint-dir',
      'none',
      '--data',
      other,
    ]);
    const { code } = await peer.exited;
    expect(code).toBe(1);
    expect(peer.err()).toMatch(
      new RegExp(
        `${other.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(gpt2, vocab used\\) is not run run-[0-9a-f]+'s dataset "notebook.txt": train sha256 [0-9a-f]{64} \\(\\d+ tokens\\), the run's [0-9a-f]{64}`,
      ),
    );
    coord.cp.kill('SIGINT');
  }, 90_000);
});
