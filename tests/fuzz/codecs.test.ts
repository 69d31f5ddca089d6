// Fuzz: codec payloads (src/compress). Per codec, 10,000 seeded inputs (valid payloads from the GPU encoder, mutated,
// or random bytes) through the host-side validation every decode starts with (checkPayload): each is refused with a
// CodecError naming the codec, or accepted; and the same inputs through the GPU decode (codec.decode): it throws the
// same CodecError before touching the output (checked on every 20th input: a read-back costs ~0.5 ms on lavapipe),
// or decodes, and blockwise and top-k decodes of an accepted payload are finite. After the fuzzing the valid payload
// still decodes to the same bits (nothing was left broken).
import { describe, expect, it } from 'vitest';
import { CodecError, createCodec, type RoundingKey } from '../../src/compress/codec';
import type { CodecSpec } from '../../src/compress/spec';
import { checkPayload } from '../../src/compress/validate';
import { HEADER_BYTES } from '../../src/compress/wire-format';
import { gpuRuntime, poison, randn, rng, testSeed } from '../support/gpu';
import { isCrash, mutate, randomBytes } from './mutate';

const INPUTS = 10_000;
const GPU_INPUTS = INPUTS;
const KEY: RoundingKey = { seed: 5, step: 2, mb: 1, stream: 0 };

const SPECS: CodecSpec[] = [
  { kind: 'fp32' },
  { kind: 'fp16' },
  { kind: 'int8', block: 64, rounding: 'nearest' },
  { kind: 'int4', block: 32, rounding: 'stochastic' },
  { kind: 'topk', fraction: 0.1 },
];

describe('fuzz: codec payloads', () => {
  for (const spec of SPECS) {
    it(`${spec.kind}: ${INPUTS} mutated and random payloads refused with a CodecError or accepted, also through the GPU decode`, async () => {
      const rt = await gpuRuntime();
      const rand = rng(testSeed(`fuzz: codec ${spec.kind}`));
      const codec = createCodec(rt, spec);
      const sizes = [1, 37, 200];
      const valid: { n: number; payload: Uint8Array }[] = [];
      for (const n of sizes) {
        const src = rt.upload(randn(n, rand, 2), [n], 'src');
        valid.push({ n, payload: await codec.encode(rt, src, n, KEY) });
        rt.release(src);
      }
      const out = rt.tensor([256], 'out');
      const refDecode = async (v: { n: number; payload: Uint8Array }) => {
        codec.decode(rt, v.payload, out, v.n);
        return (await rt.read(out)).slice(0, v.n);
      };
      const before = await refDecode(valid[2]);

      let refused = 0;
      let accepted = 0;
      let gpuRefused = 0;
      let gpuAccepted = 0;
      const crashes: string[] = [];
      const reasons = new Set<string>();
      const t0 = performance.now();
      let tGpu = 0;
      for (let i = 0; i < INPUTS; i++) {
        const v = valid[Math.floor(rand() * valid.length)];
        const r = rand();
        const payload = r < 0.1 ? randomBytes(rand, v.payload.byteLength + 8) : mutate(v.payload, rand, [[0, HEADER_BYTES + 16]]);
        // Mostly the payload's own n; sometimes another n (a caller expecting another tensor).
        const n = rand() < 0.9 ? v.n : 1 + Math.floor(rand() * 255);
        let ok = false;
        try {
          checkPayload(spec, payload, n);
          ok = true;
          accepted++;
        } catch (e) {
          if (e instanceof CodecError && !isCrash(e) && e.codec === spec.kind) {
            refused++;
            reasons.add(e.problem.replace(/[-\d.e+]+|NaN|Infinity/g, '#').slice(0, 40));
          } else crashes.push(`check ${i}: ${String(e)}`);
        }
        if (i < GPU_INPUTS) {
          const g0 = performance.now();
          // The untouched-output check of a refusal costs a read-back: every 20th input.
          const probe = i % 20 === 0;
          if (probe) poison(rt, out);
          try {
            codec.decode(rt, payload, out, n);
            gpuAccepted++;
            const x = (await rt.read(out)).slice(0, n);
            if (!ok) crashes.push(`decode ${i}: the GPU decode took a payload the host check refused`);
            if (spec.kind !== 'fp32' && spec.kind !== 'fp16' && !x.every(Number.isFinite)) crashes.push(`decode ${i}: non-finite output`);
          } catch (e) {
            if (e instanceof CodecError && !isCrash(e)) {
              gpuRefused++;
              if (ok) crashes.push(`decode ${i}: refused what the host check accepted: ${e.message}`);
              // Refused before any GPU work: the output is untouched (still NaN).
              if (probe && !(await rt.read(out)).every(Number.isNaN)) crashes.push(`decode ${i}: a refused payload wrote the output`);
            } else crashes.push(`decode ${i}: ${String(e)}`);
          }
          tGpu += performance.now() - g0;
        }
      }
      const ms = performance.now() - t0;
      expect(crashes.slice(0, 5)).toEqual([]);
      expect(refused + accepted).toBe(INPUTS);
      expect(gpuRefused + gpuAccepted).toBe(GPU_INPUTS);
      expect(refused).toBeGreaterThan(INPUTS / 4);
      // Nothing was left broken: the valid payload decodes to the same bits as before.
      const after = await refDecode(valid[2]);
      expect(Buffer.compare(Buffer.from(after.buffer), Buffer.from(before.buffer))).toBe(0);
      rt.release(out);
      console.log(
        `fuzz ${spec.kind}: ${INPUTS} host checks + ${GPU_INPUTS} GPU decodes in ${ms.toFixed(0)} ms (GPU ${tGpu.toFixed(0)} ms): ` +
          `${refused} refused, ${accepted} accepted; GPU ${gpuRefused} refused, ${gpuAccepted} decoded; ${reasons.size} kinds of refusal`,
      );
    }, 120_000);
  }
});
