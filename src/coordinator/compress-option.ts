// The `compress` run option (`--compress` on the CLI, `?compress=` on the coordinator page) -> a CompressSpec:
//   none                      today's wire: fp32 both ways, no bottleneck, exact per-step all-reduce
//   default                   DEFAULT_COMPRESS, the best measured trade-off (npm run bench -- compress)
//   {"act":{"kind":"int8",...}}  a CompressSpec as JSON (fields left out are none's; a local sync's outer lr and
//                             momentum default to DiLoCo's)
//   act=int8:64,grad=int4:32:stochastic,bottleneck=16p,sync=local:H=50:int8
//                             the compact form: comma-separated key=value, keys act, grad, pipe (= act and grad),
//                             bottleneck, sync; keys left out are none's.
// Codecs: fp32 | fp16 | int8[:block][:nearest|stochastic] | int4[:block][:nearest|stochastic] (block 64 when left
// out) | topk:FRACTION (sync only). Bottleneck: none | WIDTH | WIDTHp (p: the first WIDTH residual channels pass
// straight through). Sync: per-step | local[:H=N][:lr=X][:momentum=X][:CODEC] (H 50 and int8 when left out).
import type { z } from 'zod';
import {
  COMPRESS_NONE,
  compressSpecSchema,
  codecSpecSchema,
  denseCodecSpecSchema,
  OUTER_DEFAULTS,
  type CodecSpec,
  type CompressSpec,
  type SyncSpec,
} from '../compress/spec';

/**
 * `--compress default`, from `npm run bench -- compress` (reference model, 2 stages, 80 steps): a passthrough
 * bottleneck of width 8 with int4 blockwise activations and gradients sends 112x fewer bytes across the boundary than
 * fp32 for +2.4% validation loss (78x while u32 targets still travelled beside the activations, before protocol 4);
 * the only measured point within 3% at >= 64x. Sync stays exact per step by default: local steps reach 177x fewer sync
 * bytes at -0.3% (H=25, int4, 600 steps) and 355x at +2.2% (H=50), but a replica lost during an outer sync still ends
 * the run (docs/compression.md, Local steps), so they are opt-in (`sync=local:H=25:int4`) until they survive churn.
 */
export const DEFAULT_COMPRESS: CompressSpec = {
  act: { kind: 'int4', block: 64, rounding: 'nearest' },
  grad: { kind: 'int4', block: 64, rounding: 'nearest' },
  bottleneck: { width: 8, passthrough: true },
  sync: { mode: 'per-step' },
};

export const DEFAULT_CODEC_BLOCK = 64;
export const DEFAULT_LOCAL_H = 50;

export class CompressOptionError extends Error {
  override name = 'CompressOptionError';
}

const CODEC_HELP = 'fp32, fp16, int8[:block][:nearest|stochastic], int4[:block][:nearest|stochastic], topk:fraction (sync only)';

function fail(what: string): never {
  throw new CompressOptionError(what);
}

/** One codec from its compact form (`int8:64:stochastic`). */
export function parseCodec(text: string, where: string): CodecSpec {
  const [kind, ...rest] = text.split(':');
  const bad = (why: string) => fail(`${where}: "${text}" ${why}`);
  switch (kind) {
    case 'fp32':
    case 'fp16':
      if (rest.length) bad(`takes no parameters`);
      return { kind };
    case 'int8':
    case 'int4': {
      if (rest.length > 2) bad('has too many parts (int8[:block][:nearest|stochastic])');
      let block = DEFAULT_CODEC_BLOCK;
      let rounding: 'nearest' | 'stochastic' = 'nearest';
      for (const part of rest) {
        if (part === 'nearest' || part === 'stochastic') rounding = part;
        else if (/^\d+$/.test(part)) block = Number(part);
        else bad(`: "${part}" is neither a block size nor a rounding (nearest, stochastic)`);
      }
      return checked(codecSpecSchema, { kind, block, rounding }, `${where}: "${text}"`);
    }
    case 'topk': {
      if (rest.length !== 1) bad('needs a fraction (topk:0.01)');
      const fraction = Number(rest[0]);
      if (!Number.isFinite(fraction)) bad(`: "${rest[0]}" is not a number`);
      return checked(codecSpecSchema, { kind, fraction }, `${where}: "${text}"`);
    }
    default:
      return bad(`is not a codec (${CODEC_HELP})`);
  }
}

function parseDense(text: string, where: string): CompressSpec['act'] {
  const c = parseCodec(text, where);
  if (c.kind === 'topk') fail(`${where}: top-k is for replica sync only; activations and their gradients use fp32, fp16, int8 or int4`);
  return c;
}

function parseBottleneck(text: string): CompressSpec['bottleneck'] {
  if (text === 'none') return null;
  const m = /^(\d+)(p?)$/.exec(text);
  if (!m) fail(`bottleneck: "${text}" is not none, WIDTH or WIDTHp (e.g. 16, or 16p for passthrough)`);
  const width = Number(m[1]);
  if (width < 1) fail(`bottleneck: width ${width} must be at least 1`);
  return { width, passthrough: m[2] === 'p' };
}

function parseSync(text: string): SyncSpec {
  if (text === 'per-step') return { mode: 'per-step' };
  const [mode, ...parts] = text.split(':');
  if (mode !== 'local') fail(`sync: "${text}" is not per-step or local[:H=N][:lr=X][:momentum=X][:codec]`);
  let H = DEFAULT_LOCAL_H;
  let outerLr: number = OUTER_DEFAULTS.outerLr;
  let outerMomentum: number = OUTER_DEFAULTS.outerMomentum;
  const codecParts: string[] = [];
  for (const p of parts) {
    const kv = /^(H|lr|momentum)=(.*)$/.exec(p);
    if (!kv) {
      codecParts.push(p);
      continue;
    }
    const v = Number(kv[2]);
    if (kv[2].trim() === '' || !Number.isFinite(v)) fail(`sync: ${kv[1]}="${kv[2]}" is not a number`);
    if (kv[1] === 'H') H = v;
    else if (kv[1] === 'lr') outerLr = v;
    else outerMomentum = v;
  }
  const codec = codecParts.length ? parseCodec(codecParts.join(':'), 'sync codec') : parseCodec('int8', 'sync codec');
  return checked(compressSpecSchema.shape.sync, { mode: 'local', H, outerLr, outerMomentum, codec }, `sync: "${text}"`);
}

function checked<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  fail(`${where}: ${r.error.issues.map((i) => `${i.path.length ? `${i.path.join('.')} ` : ''}${i.message}`).join('; ')}`);
}

function fromJson(text: string): CompressSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(`not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('JSON must be an object {act, grad, bottleneck, sync}');
  const o = raw as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !['act', 'grad', 'bottleneck', 'sync'].includes(k));
  if (unknown.length) fail(`unknown field(s) ${unknown.join(', ')} (act, grad, bottleneck, sync)`);
  const sync = o.sync && typeof o.sync === 'object' && (o.sync as { mode?: unknown }).mode === 'local' ? { ...OUTER_DEFAULTS, ...o.sync } : o.sync;
  return checked(compressSpecSchema, { ...COMPRESS_NONE, ...o, ...(o.sync !== undefined ? { sync } : {}) }, 'JSON');
}

function fromCompact(text: string): CompressSpec {
  const out: CompressSpec = { ...COMPRESS_NONE };
  const seen = new Set<string>();
  for (const item of text.split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) fail(`"${item}" is not key=value (keys: act, grad, pipe, bottleneck, sync)`);
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (seen.has(key)) fail(`${key} is given twice`);
    seen.add(key);
    switch (key) {
      case 'act':
        out.act = parseDense(value, 'act');
        break;
      case 'grad':
        out.grad = parseDense(value, 'grad');
        break;
      case 'pipe':
        if (seen.has('act') || seen.has('grad')) fail('pipe sets act and grad: give it alone, or act and grad');
        out.act = out.grad = parseDense(value, 'pipe');
        break;
      case 'bottleneck':
        out.bottleneck = parseBottleneck(value);
        break;
      case 'sync':
        out.sync = parseSync(value);
        break;
      default:
        fail(`unknown key "${key}" (act, grad, pipe, bottleneck, sync)`);
    }
    if (key !== 'pipe' && seen.has('pipe') && (key === 'act' || key === 'grad')) fail('pipe sets act and grad: give it alone, or act and grad');
  }
  return checked(compressSpecSchema, out, 'compress');
}

/** The CompressSpec the option's text names; throws CompressOptionError saying what is wrong. */
export function parseCompressOption(text: string): CompressSpec {
  const t = text.trim();
  if (t === '') fail('empty (none, default, a JSON CompressSpec, or act=...,grad=...,bottleneck=...,sync=...)');
  if (t === 'none') return COMPRESS_NONE;
  if (t === 'default') return DEFAULT_COMPRESS;
  if (t.startsWith('{')) return fromJson(t);
  return fromCompact(t);
}

/** DEFAULT_COMPRESS for a model: without its bottleneck where the model has no boundary for it or is too narrow. */
export function defaultCompressFor(nEmbd: number, stages: number): CompressSpec {
  const b = DEFAULT_COMPRESS.bottleneck;
  return b && (stages < 2 || b.width >= nEmbd) ? { ...DEFAULT_COMPRESS, bottleneck: null } : DEFAULT_COMPRESS;
}

/** Checks a spec against the model it compresses (what the spec's schema cannot know). */
export function checkCompressForModel(c: CompressSpec, nEmbd: number, stages: number): void {
  if (c.bottleneck && c.bottleneck.width >= nEmbd) fail(`bottleneck width ${c.bottleneck.width} must be below n_embd ${nEmbd}`);
  if (c.bottleneck && stages < 2) fail('a bottleneck sits at stage boundaries: it needs at least 2 stages');
  for (const [name, codec] of [
    ['act', c.act],
    ['grad', c.grad],
  ] as const) {
    if (denseCodecSpecSchema.safeParse(codec).success) continue;
    fail(`${name}: top-k is for replica sync only`);
  }
}

/** The compact form of a spec (what parseCompressOption reads back to the same spec); fp32 parts are left out. */
export function formatCompress(c: CompressSpec): string {
  const codec = (x: CodecSpec): string =>
    x.kind === 'int8' || x.kind === 'int4'
      ? `${x.kind}:${x.block}${x.rounding === 'stochastic' ? ':stochastic' : ''}`
      : x.kind === 'topk'
        ? `topk:${x.fraction}`
        : x.kind;
  const parts: string[] = [];
  if (JSON.stringify(c.act) === JSON.stringify(c.grad)) {
    if (c.act.kind !== 'fp32') parts.push(`pipe=${codec(c.act)}`);
  } else parts.push(`act=${codec(c.act)}`, `grad=${codec(c.grad)}`);
  if (c.bottleneck) parts.push(`bottleneck=${c.bottleneck.width}${c.bottleneck.passthrough ? 'p' : ''}`);
  if (c.sync.mode === 'local') parts.push(`sync=local:H=${c.sync.H}:lr=${c.sync.outerLr}:momentum=${c.sync.outerMomentum}:${codec(c.sync.codec)}`);
  return parts.length ? parts.join(',') : 'none';
}

/** True when the spec is today's wire (the run config then leaves `compress` out, bit for bit as before). */
export function isCompressNone(c: CompressSpec): boolean {
  return c.act.kind === 'fp32' && c.grad.kind === 'fp32' && c.bottleneck === null && c.sync.mode === 'per-step';
}
