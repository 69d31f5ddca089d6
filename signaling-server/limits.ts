// Server limits; every one can be overridden by startSignalingServer's options (tests use small values).

import type { RateLimit } from './rate-limit';

export interface ServerLimits {
  /** Messages above this get a `too-large` error reply (an SDP is a few KiB). */
  maxMessageBytes: number;
  /** Frames above this are cut off by ws itself (close 1009) without being buffered whole. */
  hardMaxBytes: number;
  rate: RateLimit;
  /** Bad messages tolerated per connection before it is closed with 1008. */
  maxStrikes: number;
  maxPeersPerRoom: number;
  /** Joins whose signature is being verified at once, server-wide; more get `busy` (bounds the pending crypto). */
  maxPendingJoins: number;
  /** Messages a client may send while its join is verified; they are handled after it, in order. */
  maxQueuedWhileJoining: number;
  /** WebSocket ping period; a client that misses one whole period is terminated and announced as left. */
  keepaliveMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxMessageBytes: 64 * 1024,
  hardMaxBytes: 1024 * 1024,
  rate: { perSecond: 200, burst: 400 },
  maxStrikes: 5,
  maxPeersPerRoom: 256,
  maxPendingJoins: 64,
  maxQueuedWhileJoining: 16,
  keepaliveMs: 15_000,
};
