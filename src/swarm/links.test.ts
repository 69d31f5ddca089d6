// Links' waits for incoming links: settled by the link, by the timeout, or at once by abandon() and close().
import { describe, expect, it } from 'vitest';
import { LinkAbandonedError, Links, type Dialer } from './links';

/** A dialer that never connects: only the waiting side of Links is under test here. */
const idle: Dialer = {
  connect: (peerId) => Promise.reject(new Error(`no dialing in this test (${peerId})`)),
  onConnection: () => () => undefined,
};

describe('Links waits', () => {
  it('abandon() fails the waits of the peers it rejects at once, keeps the others, and close() fails the rest', async () => {
    const links = new Links(idle, () => undefined);
    const t0 = performance.now();
    const gone = links.link('a', false, 60_000);
    const gone2 = links.link('a', false, 60_000);
    const kept = links.link('b', false, 60_000);
    let keptSettled = false;
    kept.then(
      () => (keptSettled = true),
      () => (keptSettled = true),
    );
    links.abandon((p) => p !== 'a', 'it left the room');
    await expect(gone).rejects.toThrow(new LinkAbandonedError('no incoming link from a: it left the room'));
    await expect(gone2).rejects.toBeInstanceOf(LinkAbandonedError);
    await new Promise((r) => setTimeout(r, 20));
    expect(keptSettled).toBe(false);
    links.close();
    await expect(kept).rejects.toThrow(/no incoming link from b: the links are closed/);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('a wait nobody answers fails after its timeout, not as abandoned', async () => {
    const links = new Links(idle, () => undefined);
    const err = await links.link('c', false, 30).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(LinkAbandonedError);
    expect(String(err)).toMatch(/no incoming link from c within 30 ms/);
    links.close();
  });
});
