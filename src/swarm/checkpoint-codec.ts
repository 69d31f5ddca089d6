// The bytes of a stage checkpoint (docs/resilience.md, "Checkpoints"): one safetensors file, the same in a Node
// directory (src/cli/checkpoint-dir.ts), in IndexedDB (src/ui/idb-checkpoints.ts) and on a custody transfer.
//
//   tensors  params, m, v                 F32 [n]
//            outer.sync, outer.mom, outer.ef   F32 [n], local-steps mode only (all three or none)
//   metadata format   CHECKPOINT_FORMAT
//            runId, stage, step, layout, savedAt
//            digest   stateDigest() of {layout, step, params, m, v, outer sync/mom}: what replicas report
//            check    Fnv64 of what the digest leaves out (run, stage, savedAt, the error-feedback residual), so no
//                     byte of the content can change unnoticed
// The decoder refuses anything else (another tensor or key, another dtype or shape, a mismatched digest) with an
// Error that says what is wrong; it never returns a checkpoint other than the one encoded.
import { decodeSafetensors, encodeSafetensors, parseStrictJson, type StTensor } from '../model/safetensors';
import type { StageCheckpoint } from './checkpoints';
import { Fnv64, stateDigest } from './state-transfer';

export const CHECKPOINT_FORMAT = 'tabswarm-stage-checkpoint/1';

const META_KEYS = ['format', 'runId', 'stage', 'step', 'layout', 'savedAt', 'digest', 'check'] as const;
const BASE_TENSORS = ['params', 'm', 'v'] as const;
const OUTER_TENSORS = ['outer.sync', 'outer.mom', 'outer.ef'] as const;
/** The run config's runId rule (src/protocol/run-config.ts). */
const RUN_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
/** A canonical non-negative decimal integer (no sign, no leading zeros, no exponent). */
const UINT = /^(0|[1-9][0-9]{0,15})$/;

function fail(msg: string): never {
  throw new Error(`stage checkpoint: ${msg}`);
}

function checkOf(ck: Omit<StageCheckpoint, 'params' | 'm' | 'v'>): string {
  const h = new Fnv64().string(CHECKPOINT_FORMAT).string(ck.runId).number(ck.stage).number(ck.step).number(ck.savedAt).string(ck.digest);
  if (ck.outer) h.number(ck.outer.ef.length).update(ck.outer.ef);
  else h.number(-1);
  return h.hex();
}

function uint(name: string, v: number): string {
  if (!Number.isSafeInteger(v) || v < 0) fail(`${name} must be an integer >= 0, got ${v}`);
  return String(v);
}

export function encodeStageCheckpoint(ck: StageCheckpoint): Uint8Array {
  if (typeof ck.runId !== 'string' || !RUN_ID.test(ck.runId)) fail(`run id ${JSON.stringify(ck.runId)} is not a run id`);
  if (typeof ck.layout !== 'string' || ck.layout.length === 0) fail('layout must be a non-empty string');
  const n = ck.params.length;
  const tensors: StTensor[] = [
    { name: 'params', shape: [n], data: ck.params },
    { name: 'm', shape: [n], data: ck.m },
    { name: 'v', shape: [n], data: ck.v },
  ];
  if (ck.outer) {
    tensors.push(
      { name: 'outer.sync', shape: [n], data: ck.outer.sync },
      { name: 'outer.mom', shape: [n], data: ck.outer.mom },
      { name: 'outer.ef', shape: [n], data: ck.outer.ef },
    );
  }
  for (const t of tensors) if (!(t.data instanceof Float32Array) || t.data.length !== n) fail(`${t.name} must be a Float32Array of ${n} values`);
  const digest = stateDigest(ck);
  if (digest !== ck.digest) fail(`digest ${ck.digest} is not the state's (${digest})`);
  const metadata: Record<(typeof META_KEYS)[number], string> = {
    format: CHECKPOINT_FORMAT,
    runId: ck.runId,
    stage: uint('stage', ck.stage),
    step: uint('step', ck.step),
    layout: ck.layout,
    savedAt: uint('savedAt', ck.savedAt),
    digest,
    check: checkOf(ck),
  };
  return encodeSafetensors(tensors, metadata);
}

/** The metadata of a checkpoint file, read from its header only (no tensor data needed, nothing verified). */
export interface CheckpointHeader {
  runId: string;
  stage: number;
  step: number;
  digest: string;
  savedAt: number;
}

function parseMeta(meta: Record<string, string>): CheckpointHeader & { layout: string; check: string } {
  const keys = Object.keys(meta);
  for (const k of keys) if (!(META_KEYS as readonly string[]).includes(k)) fail(`unknown metadata key ${JSON.stringify(k.slice(0, 64))}`);
  for (const k of META_KEYS) if (!keys.includes(k)) fail(`metadata "${k}" is missing`);
  if (meta.format !== CHECKPOINT_FORMAT) fail(`format ${JSON.stringify(meta.format.slice(0, 64))} is not ${CHECKPOINT_FORMAT}`);
  if (!RUN_ID.test(meta.runId)) fail(`run id ${JSON.stringify(meta.runId.slice(0, 80))} is not a run id`);
  const num = (k: 'stage' | 'step' | 'savedAt'): number => {
    if (!UINT.test(meta[k])) fail(`metadata "${k}" ${JSON.stringify(meta[k].slice(0, 32))} is not a non-negative integer`);
    const v = Number(meta[k]);
    if (!Number.isSafeInteger(v)) fail(`metadata "${k}" ${meta[k]} is too large`);
    return v;
  };
  if (meta.layout.length === 0) fail('layout is empty');
  if (!/^[0-9a-f]{16}$/.test(meta.digest)) fail(`digest ${JSON.stringify(meta.digest.slice(0, 32))} is not 16 hex digits`);
  if (!/^[0-9a-f]{16}$/.test(meta.check)) fail(`check ${JSON.stringify(meta.check.slice(0, 32))} is not 16 hex digits`);
  return {
    runId: meta.runId,
    stage: num('stage'),
    step: num('step'),
    savedAt: num('savedAt'),
    layout: meta.layout,
    digest: meta.digest,
    check: meta.check,
  };
}

/**
 * The metadata of a checkpoint file from its first bytes only (the 8-byte length and the JSON header; `head` may
 * hold more): for listing a store without reading every tensor. Nothing is verified beyond the metadata's form.
 */
export function checkpointHeaderOf(head: Uint8Array): CheckpointHeader {
  if (head.length < 8) fail('shorter than the 8-byte header length');
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const len = dv.getUint32(0, true);
  if (dv.getUint32(4, true) !== 0 || len > head.length - 8) fail(`header length ${len} is out of range`);
  let json: unknown;
  try {
    json = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, 8 + len)));
  } catch (e) {
    fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  const meta = json !== null && typeof json === 'object' ? (json as Record<string, unknown>).__metadata__ : undefined;
  if (meta === null || typeof meta !== 'object') fail('no __metadata__');
  const strings: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string') fail(`metadata "${k.slice(0, 64)}" is not a string`);
    strings[k] = v;
  }
  const { runId, stage, step, digest, savedAt } = parseMeta(strings);
  return { runId, stage, step, digest, savedAt };
}

/** Bytes to read for checkpointHeaderOf: the length field, then that many. */
export function checkpointHeaderLength(first8: Uint8Array): number {
  if (first8.length < 8) fail('shorter than the 8-byte header length');
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  if (dv.getUint32(4, true) !== 0) fail('header length is out of range');
  return 8 + dv.getUint32(0, true);
}

export function decodeStageCheckpoint(bytes: Uint8Array): StageCheckpoint {
  let file: ReturnType<typeof decodeSafetensors>;
  try {
    file = decodeSafetensors(bytes);
  } catch (e) {
    fail((e as Error).message);
  }
  const h = parseMeta(file.metadata);
  const names = [...file.tensors.keys()];
  const outer = names.some((x) => (OUTER_TENSORS as readonly string[]).includes(x));
  const want: readonly string[] = outer ? [...BASE_TENSORS, ...OUTER_TENSORS] : BASE_TENSORS;
  for (const x of names) if (!want.includes(x)) fail(`unexpected tensor ${JSON.stringify(x.slice(0, 64))}`);
  for (const x of want) if (!file.tensors.has(x)) fail(`tensor "${x}" is missing`);
  const get = (x: string): Float32Array => {
    const t = file.tensors.get(x);
    if (!t) fail(`tensor "${x}" is missing`);
    if (t.dtype !== 'F32') fail(`tensor "${x}" is ${t.dtype}, not F32`);
    if (t.shape.length !== 1) fail(`tensor "${x}" has shape [${t.shape}], not [n]`);
    return t.data;
  };
  const params = get('params');
  const n = params.length;
  const ck: StageCheckpoint = {
    runId: h.runId,
    stage: h.stage,
    step: h.step,
    layout: h.layout,
    digest: h.digest,
    savedAt: h.savedAt,
    params,
    m: get('m'),
    v: get('v'),
    ...(outer ? { outer: { sync: get('outer.sync'), mom: get('outer.mom'), ef: get('outer.ef') } } : {}),
  };
  for (const x of want) if (get(x).length !== n) fail(`tensor "${x}" has ${get(x).length} values, params ${n}`);
  const total = layoutTotal(h.layout);
  if (total !== n) fail(`layout holds ${total ?? 'no'} values, params ${n}`);
  const digest = stateDigest(ck);
  if (digest !== h.digest) fail(`digest mismatch: the file says ${h.digest}, its state is ${digest} (damaged)`);
  if (checkOf(ck) !== h.check) fail('check mismatch: its run, stage, time or error-feedback residual were changed (damaged)');
  return ck;
}

/** The `total` of a layoutOf() string (the flat length), or undefined when it is not one. */
function layoutTotal(layout: string): number | undefined {
  try {
    const v = JSON.parse(layout) as unknown;
    if (v !== null && typeof v === 'object' && 'total' in v) {
      const t = (v as { total: unknown }).total;
      if (typeof t === 'number' && Number.isSafeInteger(t)) return t;
    }
  } catch {
    // not a layoutOf() string
  }
  return undefined;
}
