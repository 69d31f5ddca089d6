// Send-side flow control: callers wait until the channel's queue drops below a high-water mark. The
// `bufferedamountlow` event is the fast path; a polling timer is the fallback because some stacks have been seen
// never to fire it (see the loopback notes on @roamhq/wrtc), and a missed event must not stall a transfer forever.

import type { RawChannel } from './raw-channel';

export interface BackpressureOptions {
  /** Stop sending while bufferedAmount is above this. */
  highWaterMark: number;
  /** `bufferedlow` fires at or below this; also what the fallback poll waits for. */
  lowWaterMark: number;
  /** Fallback poll period. */
  pollMs: number;
}

export const DEFAULT_BACKPRESSURE: BackpressureOptions = {
  highWaterMark: 8 * 1024 * 1024,
  lowWaterMark: 2 * 1024 * 1024,
  pollMs: 20,
};

export class ChannelClosedError extends Error {
  override name = 'ChannelClosedError';
}

/** Resolves at once if there is room; otherwise when the queue has drained to the low-water mark. */
export function waitForRoom(channel: RawChannel, opts: BackpressureOptions): Promise<void> {
  if (!channel.isOpen) return Promise.reject(new ChannelClosedError('channel closed'));
  if (channel.bufferedAmount <= opts.highWaterMark) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      offLow();
      offClose();
      clearInterval(poll);
      if (err) reject(err);
      else resolve();
    };
    const offLow = channel.events.on('bufferedlow', () => done());
    const offClose = channel.events.on('close', ({ reason }) => done(new ChannelClosedError(`channel closed: ${reason}`)));
    const poll = setInterval(() => {
      if (!channel.isOpen) done(new ChannelClosedError('channel closed'));
      else if (channel.bufferedAmount <= opts.lowWaterMark) done();
    }, opts.pollMs);
  });
}
