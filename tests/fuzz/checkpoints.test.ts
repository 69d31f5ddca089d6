// Fuzz: checkpoint files (src/model/safetensors.ts decodeSafetensors, src/model/checkpoint.ts decodeCheckpoint).
// 10,000 seeded inputs each: a valid tiny checkpoint (with tokenizer and a bottleneck in one of the two) mutated, its
// JSON header rewritten with random edits, or random bytes. Each parses or is refused with a plain Error whose
// message says what is wrong; no TypeError / RangeError, and a parsed checkpoint has every tensor of the size its
// config says.
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../src/model/checkpoint';
import { modelParamSpecs } from '../../src/model/bottleneck-config';
import { decodeSafetensors } from '../../src/model/safetensors';
import { CharTokenizer } from '../../src/model/tokenizer';
import type { GPTConfig } from '../../src/model/config';
import { randn, rng, testSeed } from '../support/random';
import { isCrash, mutate, randomBytes } from './mutate';

const INPUTS = 10_000;

function tinyCheckpoint(rand: () => number, bottleneck: boolean): Uint8Array {
  const config: GPTConfig = { n_layer: 2, n_head: 2, n_embd: 8, vocab_size: 12, block_size: 8 };
  const b = bottleneck ? { width: 4, passthrough: true, after: [1] } : undefined;
  const params = new Map<string, Float32Array>();
  for (const s of modelParamSpecs(config, b))
    params.set(
      s.name,
      randn(
        s.shape.reduce((x, y) => x * y, 1),
        rand,
        0.1,
      ),
    );
  const ck: Checkpoint = { config, params, tokenizer: CharTokenizer.fromCorpus('hello world!').toJSON(), ...(b ? { bottleneck: b } : {}) };
  return encodeCheckpoint(ck);
}

/** The header's JSON text with a random edit (a character changed, a number replaced, a key renamed). */
function mutateHeader(file: Uint8Array, rand: () => number): Uint8Array {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const len = dv.getUint32(0, true);
  let text = new TextDecoder().decode(file.subarray(8, 8 + len));
  const edits: (() => void)[] = [
    () => {
      const i = Math.floor(rand() * text.length);
      text = text.slice(0, i) + String.fromCharCode(32 + Math.floor(rand() * 95)) + text.slice(i + 1);
    },
    () => {
      const nums = [...text.matchAll(/\d+/g)];
      const m = nums[Math.floor(rand() * nums.length)];
      const repl = ['-1', '0', '1e400', '9007199254740993', '1.5', '"3"', 'null', '4294967296', String(Math.floor(rand() * 5000))];
      if (m?.index !== undefined) text = text.slice(0, m.index) + repl[Math.floor(rand() * repl.length)] + text.slice(m.index + m[0].length);
    },
    () => {
      const keys = ['"dtype"', '"shape"', '"data_offsets"', '"F32"', '"n_head"', '"n_layer"', '"__metadata__"', '"bottleneck"', '"tokenizer"'];
      const k = keys[Math.floor(rand() * keys.length)];
      text = text.replace(k, ['"x"', '"F16"', '"BF16"', '"I64"', '""', '"n_embd"', k.toUpperCase()][Math.floor(rand() * 7)]);
    },
  ];
  edits[Math.floor(rand() * edits.length)]();
  const header = new TextEncoder().encode(text);
  const body = file.subarray(8 + len);
  const out = new Uint8Array(8 + header.length + body.length);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 8);
  out.set(body, 8 + header.length);
  return out;
}

describe('fuzz: checkpoints', () => {
  it(`${INPUTS} mutated and random checkpoint files: parsed or refused with a clear error`, () => {
    const rand = rng(testSeed('fuzz: checkpoints'));
    const valid = [tinyCheckpoint(rand, false), tinyCheckpoint(rand, true)];
    for (const v of valid) expect(decodeCheckpoint(v).params.size).toBeGreaterThan(0);
    const crashes: string[] = [];
    let refusedSt = 0;
    let refusedCk = 0;
    let parsed = 0;
    const t0 = performance.now();
    for (let i = 0; i < INPUTS; i++) {
      const v = valid[i % 2];
      const r = rand();
      const file = r < 0.05 ? randomBytes(rand, 256) : r < 0.45 ? mutateHeader(v, rand) : mutate(v, rand, [[0, 8 + Math.min(400, v.length - 8)]]);
      // The container alone, then the checkpoint on top of it.
      try {
        decodeSafetensors(file, { maxHeaderBytes: 1 << 20 });
      } catch (e) {
        if (isCrash(e)) crashes.push(`safetensors ${i}: ${(e as Error).stack ?? String(e)}`);
        else refusedSt++;
      }
      try {
        const ck = decodeCheckpoint(file);
        parsed++;
        const specs = modelParamSpecs(ck.config, ck.bottleneck);
        for (const s of specs) {
          const t = ck.params.get(s.name);
          const size = s.shape.reduce((x, y) => x * y, 1);
          if (!t || t.length !== size) crashes.push(`checkpoint ${i}: ${s.name} has ${t?.length} values, expected ${size}`);
        }
      } catch (e) {
        if (isCrash(e)) crashes.push(`checkpoint ${i}: ${(e as Error).stack ?? String(e)}`);
        else refusedCk++;
      }
    }
    const ms = performance.now() - t0;
    expect(crashes.slice(0, 3)).toEqual([]);
    expect(refusedCk).toBeGreaterThan(INPUTS / 3);
    console.log(
      `fuzz checkpoints: ${INPUTS} files in ${ms.toFixed(0)} ms; safetensors refused ${refusedSt}; checkpoint refused ${refusedCk}, parsed ${parsed}`,
    );
  }, 120_000);
});
