// The engine's CLI end to end, as a user runs it (child processes of bin/tabswarm.mjs): `grad` on a checkpoint
// written by another writer agrees with the float64 reference; `train --json` ends with its summary line and writes a
// checkpoint that `eval` and `sample` read; malformed inputs fail with a message that names the problem.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/model/checkpoint';
import { gpt2ParamSpecs, type GPTConfig } from '../../src/model/config';
import { gpt64Backward } from '../reference/gpt64';
import { expectClose, randInt, randn, rng } from '../support/gpu';

const run = promisify(execFile);
const bin = join(__dirname, '..', '..', 'bin', 'tabswarm.mjs');
const env = { ...process.env, TABSWARM_QUIET: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() };

async function tabswarm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { env, maxBuffer: 64 << 20, timeout: 240_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

describe('tabswarm CLI (engine)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tabswarm-cli-'));

  it('grad writes every parameter gradient, matching the float64 reference, for a checkpoint without a tokenizer', async () => {
    const config: GPTConfig = { n_layer: 2, n_head: 2, n_embd: 8, vocab_size: 13, block_size: 6 };
    const rand = rng(4242);
    const params = new Map<string, Float32Array>();
    for (const s of gpt2ParamSpecs(config))
      params.set(
        s.name,
        randn(
          s.shape.reduce((a, b) => a * b, 1),
          rand,
          0.3,
        ),
      );
    const ck = join(dir, 'tiny.safetensors');
    writeFileSync(ck, encodeCheckpoint({ config, params }));
    const B = 2;
    const T = 5;
    const inputs = randInt(B * T, config.vocab_size, rand);
    const targets = randInt(B * T, config.vocab_size, rand);
    const rows = (a: Uint32Array) => [Array.from(a.subarray(0, T)), Array.from(a.subarray(T))];
    const batch = join(dir, 'batch.json');
    writeFileSync(batch, JSON.stringify({ inputs: rows(inputs), targets: rows(targets) }));
    const out = join(dir, 'grads.safetensors');
    const r = await tabswarm(['grad', '--checkpoint', ck, '--batch', batch, '--out', out]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const { loss } = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const ref = gpt64Backward(config, new Map([...params].map(([k, v]) => [k, Float64Array.from(v)])), inputs, targets, B, T);
    expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-5);
    const grads = decodeCheckpoint(new Uint8Array(readFileSync(out))).params;
    for (const s of gpt2ParamSpecs(config)) {
      const e = ref.grads.get(s.name)!;
      const scale = Math.max(...Array.from(e, Math.abs), 1e-6);
      expectClose(`grad ${s.name}`, grads.get(s.name)!, e, 1e-4 * scale, 2e-3);
    }
  });

  it('grad refuses a malformed batch and a malformed checkpoint, naming the problem', async () => {
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
    const r1 = await tabswarm(['grad', '--checkpoint', bad, '--batch', 'x.json', '--out', join(dir, 'g.safetensors')]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/checkpoint .*bad\.safetensors: .*header/i);
    const ck = join(dir, 'tiny.safetensors');
    const batch = join(dir, 'badbatch.json');
    writeFileSync(batch, JSON.stringify({ inputs: [[1, 2, 99]], targets: [[1, 2, 3]] }));
    const r2 = await tabswarm(['grad', '--checkpoint', ck, '--batch', batch, '--out', join(dir, 'g.safetensors')]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/inputs\[0\]\[2\] = 99 is not a token id/);
    const r3 = await tabswarm(['train', '--steps', 'many']);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/--steps: "many" is not a number/);
  });

  it('train --json ends with the summary; eval and sample read its checkpoint', async () => {
    const ck = join(dir, 'trained.safetensors');
    const r = await tabswarm([
      'train',
      '--n-layer',
      '1',
      '--n-head',
      '2',
      '--n-embd',
      '16',
      '--block-size',
      '16',
      '--batch-size',
      '4',
      '--steps',
      '12',
      '--warmup',
      '2',
      '--lr',
      '3e-3',
      '--eval-every',
      '6',
      '--eval-batches',
      '2',
      '--log-every',
      '3',
      '--json',
      '--no-tune',
      '--out',
      ck,
    ]);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const summary = lines[lines.length - 1];
    expect(Object.keys(summary).sort()).toEqual(['steps', 'tokens_per_s', 'train_loss', 'val_loss']);
    expect(summary.steps).toBe(12);
    expect(summary.tokens_per_s).toBeGreaterThan(0);
    expect(lines.slice(0, -1).every((l) => typeof l.step === 'number' && Number.isFinite(l.loss))).toBe(true);
    expect(lines.some((l) => typeof l.val_loss === 'number')).toBe(true);
    const ev = await tabswarm(['eval', '--checkpoint', ck, '--batch-size', '4', '--eval-batches', '2']);
    expect(ev.code).toBe(0);
    expect(JSON.parse(ev.stdout.trim()).val_loss).toBeCloseTo(summary.val_loss, 4);
    const sm = await tabswarm(['sample', '--checkpoint', ck, '--prompt', 'ROMEO:', '--chars', '40']);
    expect(sm.code).toBe(0);
    expect(sm.stdout.startsWith('ROMEO:')).toBe(true);
    expect(sm.stdout.length).toBeGreaterThanOrEqual('ROMEO:'.length + 40);
  }, 300_000);
});
