// What `tabswarm serve` tells every page and Node peer at GET /api/config (docs/deployment.md): where signaling is,
// the ICE servers (TURN with short-lived credentials), the runs whose coordinator is connected, the shared run
// defaults and the served dataset. One schema; pages and `tabswarm peer --serve URL` parse it with parseServeConfig.
import { z } from 'zod';
import { dataSpecSchema } from './run-config';

export const SERVE_CONFIG_VERSION = 1;

/** An RTCIceServer as the W3C interface takes it (urls: stun:, turn:, turns:). */
export const iceServerSchema = z.object({
  urls: z.union([z.string().min(1).max(500), z.array(z.string().min(1).max(500)).min(1).max(16)]),
  username: z.string().max(500).optional(),
  credential: z.string().max(500).optional(),
});
export type IceServer = z.infer<typeof iceServerSchema>;

/** A room whose coordinator is connected to this server now: what a contributor joins with one click. */
export const liveRoomSchema = z.object({
  room: z.string().min(1).max(128),
  /** The coordinator key's fingerprint (64 hex digits): the only coordinator a tab joining this room obeys. */
  coordinator: z.string().regex(/^[0-9a-f]{64}$/),
  /** Peers connected to the room now (the coordinator not counted). */
  peers: z.number().int().nonnegative(),
  /** True when the room asks peers for a join token. */
  token: z.boolean(),
});
export type LiveRoom = z.infer<typeof liveRoomSchema>;

export const serveConfigSchema = z.object({
  version: z.literal(SERVE_CONFIG_VERSION),
  /** Absolute ws:// or wss:// URL of the signaling server (serve: <origin>/signal, or --public-url's). */
  signal: z.string().regex(/^wss?:\/\//),
  /** The room pages use when none is named (the CLI's DEFAULT_ROOM unless `serve --room`). */
  room: z.string().min(1).max(128),
  iceServers: z.array(iceServerSchema).max(16),
  /** 'relay' forces TURN (serve --relay-only): every candidate pair goes through the relay. */
  iceTransportPolicy: z.enum(['all', 'relay']),
  /** Seconds the TURN credentials in iceServers stay valid (0: no TURN configured). */
  turnTtlS: z.number().int().nonnegative(),
  /** Rooms whose coordinator is connected now, newest first. */
  rooms: z.array(liveRoomSchema).max(64),
  /** The dataset `serve --data FILE` serves (its `url` set); null: none, runs default to tinyshakespeare. */
  data: dataSpecSchema.nullable(),
  /** True when POST /api/data accepts uploads (serve --no-upload turns it off). */
  upload: z.boolean(),
});
export type ServeConfig = z.infer<typeof serveConfigSchema>;

/** Validates a GET /api/config answer (throws naming every problem). */
export function parseServeConfig(x: unknown): ServeConfig {
  const r = serveConfigSchema.safeParse(x);
  if (!r.success) throw new Error(`invalid serve config: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}
