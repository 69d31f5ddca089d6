// The `compress` run option: none, default, JSON and the compact form parse to the CompressSpec they say, every
// mistake is refused with a message naming the part that is wrong, and the compact form reads back what it writes.
import { describe, expect, it } from 'vitest';
import { COMPRESS_NONE, compressSpecSchema, OUTER_DEFAULTS, type CompressSpec } from '../compress/spec';
import { checkCompressForModel, CompressOptionError, DEFAULT_COMPRESS, formatCompress, isCompressNone, parseCompressOption } from './compress-option';
import { buildRun, readRunOptions, RunBuildError } from './run-builder';

const int8 = (block = 64, rounding: 'nearest' | 'stochastic' = 'nearest') => ({ kind: 'int8' as const, block, rounding });

describe('parseCompressOption', () => {
  it("none is today's wire; default is DEFAULT_COMPRESS, a valid spec that compresses", () => {
    expect(parseCompressOption('none')).toEqual(COMPRESS_NONE);
    expect(parseCompressOption(' default ')).toEqual(DEFAULT_COMPRESS);
    expect(compressSpecSchema.parse(DEFAULT_COMPRESS)).toEqual(DEFAULT_COMPRESS);
    expect(isCompressNone(DEFAULT_COMPRESS)).toBe(false);
    expect(isCompressNone(COMPRESS_NONE)).toBe(true);
  });

  it("reads the compact form; keys left out are none's", () => {
    expect(parseCompressOption('act=int8:64,grad=int4:32:stochastic,bottleneck=16p,sync=local:H=50:int8')).toEqual({
      act: int8(),
      grad: { kind: 'int4', block: 32, rounding: 'stochastic' },
      bottleneck: { width: 16, passthrough: true },
      sync: { mode: 'local', H: 50, ...OUTER_DEFAULTS, codec: int8() },
    } satisfies CompressSpec);
    expect(parseCompressOption('act=fp16')).toEqual({ ...COMPRESS_NONE, act: { kind: 'fp16' } });
    expect(parseCompressOption('pipe=int8')).toEqual({ ...COMPRESS_NONE, act: int8(), grad: int8() });
    expect(parseCompressOption('bottleneck=8')).toEqual({ ...COMPRESS_NONE, bottleneck: { width: 8, passthrough: false } });
    expect(parseCompressOption('bottleneck=none,sync=per-step')).toEqual(COMPRESS_NONE);
    expect(parseCompressOption('sync=local')).toEqual({ ...COMPRESS_NONE, sync: { mode: 'local', H: 50, ...OUTER_DEFAULTS, codec: int8() } });
    expect(parseCompressOption('sync=local:H=100:lr=0.5:momentum=0.8:topk:0.01')).toEqual({
      ...COMPRESS_NONE,
      sync: { mode: 'local', H: 100, outerLr: 0.5, outerMomentum: 0.8, codec: { kind: 'topk', fraction: 0.01 } },
    });
    expect(parseCompressOption('grad=int8:stochastic:128').grad).toEqual(int8(128, 'stochastic'));
  });

  it("reads a JSON CompressSpec; left-out fields are none's and a local sync gets DiLoCo's outer defaults", () => {
    const full: CompressSpec = { act: int8(32), grad: { kind: 'fp16' }, bottleneck: { width: 4, passthrough: false }, sync: { mode: 'per-step' } };
    expect(parseCompressOption(JSON.stringify(full))).toEqual(full);
    expect(parseCompressOption('{"act":{"kind":"fp16"}}')).toEqual({ ...COMPRESS_NONE, act: { kind: 'fp16' } });
    expect(parseCompressOption('{"sync":{"mode":"local","H":10,"codec":{"kind":"topk","fraction":0.1}}}').sync).toEqual({
      mode: 'local',
      H: 10,
      ...OUTER_DEFAULTS,
      codec: { kind: 'topk', fraction: 0.1 },
    });
  });

  it.each([
    ['', /empty/],
    ['act=int3', /act: "int3" is not a codec/],
    ['act=topk:0.1', /act: top-k is for replica sync only/],
    ['grad=int8:7', /grad: "int8:7": block Too small: expected number to be >=8/],
    ['grad=int8:64:fast', /"fast" is neither a block size nor a rounding/],
    ['grad=int8:64:nearest:1', /too many parts/],
    ['act=fp16:2', /"fp16:2" takes no parameters/],
    ['bottleneck=wide', /bottleneck: "wide" is not none, WIDTH or WIDTHp/],
    ['bottleneck=0', /width 0 must be at least 1/],
    ['sync=sometimes', /sync: "sometimes" is not per-step or local/],
    ['sync=local:H=x', /sync: H="x" is not a number/],
    ['sync=local:H=0', /sync: "local:H=0": H /],
    ['sync=local:momentum=1', /outerMomentum/],
    ['sync=local:topk:2', /sync codec: "topk:2"/],
    ['sync=local:topk', /needs a fraction/],
    ['act', /"act" is not key=value/],
    ['speed=fast', /unknown key "speed"/],
    ['act=fp16,act=fp32', /act is given twice/],
    ['pipe=int8,act=fp16', /pipe sets act and grad/],
    ['act=fp16,pipe=int8', /pipe sets act and grad/],
    ['{"act":', /not valid JSON/],
    ['{"act":{"kind":"int9"}}', /JSON: act/],
    ['{"wire":1}', /unknown field\(s\) wire/],
    ['[1]', /"\[1\]" is not key=value/],
  ])('refuses %j, saying what is wrong', (text, why) => {
    expect(() => parseCompressOption(text)).toThrow(CompressOptionError);
    expect(() => parseCompressOption(text)).toThrow(why);
  });

  it('formatCompress writes the compact form back to the same spec', () => {
    const specs = [
      COMPRESS_NONE,
      DEFAULT_COMPRESS,
      parseCompressOption('act=int4:32:stochastic,grad=fp16,bottleneck=16p,sync=local:H=10:lr=0.5:momentum=0.8:topk:0.05'),
      parseCompressOption('act=int8:128,bottleneck=8,sync=local:int4:64'),
    ];
    for (const s of specs) expect(parseCompressOption(formatCompress(s))).toEqual(s);
  });

  it('checks a spec against the model: the bottleneck is narrower than n_embd and sits between stages', () => {
    const b = parseCompressOption('bottleneck=64');
    expect(() => checkCompressForModel(b, 64, 2)).toThrow(/bottleneck width 64 must be below n_embd 64/);
    expect(() => checkCompressForModel(b, 128, 1)).toThrow(/needs at least 2 stages/);
    expect(() => checkCompressForModel(b, 128, 2)).not.toThrow();
  });
});

describe('buildRun with compress', () => {
  it("leaves compress out of the run config for none (bit for bit today's run) and puts the spec in otherwise", () => {
    const plain = buildRun({ 'run-id': 'r' }, 65);
    expect(buildRun({ 'run-id': 'r', compress: 'none' }, 65)).toEqual(plain);
    expect('compress' in plain).toBe(false);
    expect(buildRun({ compress: 'default' }, 65).compress).toEqual(DEFAULT_COMPRESS);
    // On one stage there is no boundary for a bottleneck: default keeps its codecs and sync, without it.
    const one = buildRun({ compress: 'default', stages: 1 }, 65).compress;
    expect(one).toEqual({ ...DEFAULT_COMPRESS, bottleneck: null });
    expect(buildRun({ compress: 'default', 'n-embd': 8, 'n-head': 2 }, 65).compress?.bottleneck ?? null).toEqual(
      DEFAULT_COMPRESS.bottleneck && DEFAULT_COMPRESS.bottleneck.width >= 8 ? null : DEFAULT_COMPRESS.bottleneck,
    );
    expect(buildRun({ compress: 'bottleneck=16p,pipe=int8' }, 65).compress).toMatchObject({ bottleneck: { width: 16, passthrough: true } });
  });

  it('names the option as the caller calls it when the compression is wrong', () => {
    const flag = (n: string) => `--${n}`;
    expect(() => buildRun({ compress: 'act=int3' }, 65, flag)).toThrow(RunBuildError);
    expect(() => buildRun({ compress: 'act=int3' }, 65, flag)).toThrow(/^--compress: act: "int3" is not a codec/);
    expect(() => buildRun({ compress: 'bottleneck=64' }, 65, flag)).toThrow(/--compress: bottleneck width 64 must be below n_embd 64/);
  });

  it('reads the option from text (CLI flag, URL parameter)', () => {
    const got = readRunOptions((n) => (n === 'compress' ? 'pipe=int8' : undefined));
    expect(got).toEqual({ compress: 'pipe=int8' });
  });
});
