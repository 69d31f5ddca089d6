// When and how a SignalingClient reconnects (docs/resilience.md, "Signaling server restart"). Only a connection
// that broke (the server went away, the network failed) is rejoined; a close the server meant (policy violation, a
// newer connection with the same key, a join token now required) or a refusal of the rejoin itself ends the client:
// retrying would fight the server's decision, e.g. a reloaded tab's new connection.

import type { ErrorCode } from './signaling-protocol';

export interface ReconnectOptions {
  /** How long after the connection dropped the client keeps trying (default 10 min); 0 never reconnects. */
  reconnectMs: number;
  /** First backoff delay, doubled per attempt up to maxDelayMs (defaults 250 ms and 8 s), jittered to [1/2, 1] of it. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A member absent from the roster after a rejoin is announced as left only if it is still absent after this (default 20 s). */
  rejoinGraceMs: number;
  /** Bounds of the queue of messages sent while disconnected (defaults 512 messages, 4 MiB). */
  maxQueued: number;
  maxQueuedBytes: number;
  /**
   * Control messages sent in the last this-many ms before a break are sent again after the rejoin: a message written
   * just before the server died is lost with it. Only for a layer that drops duplicates (SignedControl's per-sender
   * seq: connectSwarm sets 3000); default 0, off.
   */
  replayControlMs: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = {
  reconnectMs: 10 * 60_000,
  baseDelayMs: 250,
  maxDelayMs: 8000,
  rejoinGraceMs: 20_000,
  maxQueued: 512,
  maxQueuedBytes: 4 * 1024 * 1024,
  replayControlMs: 0,
};

/**
 * Close codes of a connection that broke rather than was closed on purpose: 1001 going away (the server shut down),
 * 1005 no status, 1006 abnormal (no close frame: process killed, network lost), 1011 internal error, 1012 service
 * restart, 1013 try again later, 1014 bad gateway. Everything else (1000 normal, 1008 policy violation, 4001
 * replaced by a newer connection with the same key, 4003 join token required, ...) is final.
 */
const BROKEN = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014]);

export function shouldReconnect(code: number): boolean {
  return BROKEN.has(code);
}

/** Server errors during a rejoin that are worth another attempt; any other error refuses the rejoin for good. */
const TRANSIENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['busy', 'rate-limited']);

export function isTransientRefusal(code: ErrorCode): boolean {
  return TRANSIENT.has(code);
}

/** Delay before reconnect attempt `attempt` (1-based); `random` in [0, 1). */
export function backoffDelay(attempt: number, opts: Pick<ReconnectOptions, 'baseDelayMs' | 'maxDelayMs'>, random: number): number {
  const full = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.max(0, Math.min(30, attempt - 1)));
  return Math.round(full * (0.5 + 0.5 * random));
}
