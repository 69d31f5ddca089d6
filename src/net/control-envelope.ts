// Control payloads: the JSON messages that the signaling server relays between a room's coordinator and its peers,
// and that two peers exchange over their data channel. src/net treats them as opaque: it checks only that one is a
// JSON object with a string `type`, within a size and a nesting-depth cap. What the types mean and which fields
// they carry is the business of the layer above (src/protocol), which hands a ControlCodec to the signaling client
// and the transports.

import { z } from 'zod';
import { parseBoundedJson, type JsonLimits } from './bounded-json';

/**
 * Largest control payload (UTF-8 JSON) accepted anywhere: below one data-channel message (256 KiB) and, with the
 * signaling envelope around it, below the signaling server's 64 KiB message limit. It bounds the coordinator's
 * broadcasts (a step-begin names every member): 16 KiB held ~260 members, 60 KiB holds about a thousand.
 */
export const MAX_CONTROL_BYTES = 60 * 1024;
/** Deepest nesting of arrays/objects inside a control payload. */
export const MAX_CONTROL_DEPTH = 16;

export const CONTROL_LIMITS: JsonLimits = { maxChars: MAX_CONTROL_BYTES, maxDepth: MAX_CONTROL_DEPTH };

/**
 * The envelope's view of a payload: an object with a `type` of 1-64 characters; the other fields are passed on
 * unread (z.unknown does not walk them, so no recursion happens here).
 */
export const controlPayloadSchema = z.looseObject({ type: z.string().min(1).max(64) });
export type ControlPayload = z.infer<typeof controlPayloadSchema>;

export type ControlParse<C> = { ok: true; value: C } | { ok: false; error: string };

/** Turns an envelope-checked payload into the layer above's typed message, or says why it cannot. */
export interface ControlCodec<C> {
  parse(payload: ControlPayload): ControlParse<C>;
}

/** The default codec: payloads stay opaque. */
export const opaqueControl: ControlCodec<ControlPayload> = { parse: (payload) => ({ ok: true, value: payload }) };

/** Checks a payload value against the envelope (depth via its serialized text, then size, then shape). */
export function checkControlPayload(value: unknown): ControlParse<{ payload: ControlPayload; json: string }> {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    return { ok: false, error: `control payload cannot be serialized: ${(err as Error).message}` };
  }
  if (json === undefined) return { ok: false, error: 'control payload is not JSON' };
  return readControlPayload(json);
}

/** Parses a payload's JSON text: bounded first, then the envelope's shape. Never throws. */
export function readControlPayload(json: string): ControlParse<{ payload: ControlPayload; json: string }> {
  const bytes = new TextEncoder().encode(json).byteLength;
  if (bytes > MAX_CONTROL_BYTES) return { ok: false, error: `control payload of ${bytes} bytes > ${MAX_CONTROL_BYTES}` };
  const parsed = parseBoundedJson(json, CONTROL_LIMITS);
  if (!parsed.ok) return { ok: false, error: `control payload ${parsed.detail}` };
  const r = controlPayloadSchema.safeParse(parsed.value);
  if (!r.success) return { ok: false, error: 'control payload must be an object with a string `type` of 1-64 characters' };
  return { ok: true, value: { payload: r.data, json } };
}
