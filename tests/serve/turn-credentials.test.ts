// TURN REST credentials against a vector computed outside the code under test: openssl, once, by hand
//   printf '1700000000:tabswarm' | openssl dgst -sha1 -hmac 'north-wind' -binary | base64
// and node:crypto's HMAC in the test itself for a fresh expiry.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { turnCredentials } from '../../signaling-server/turn-credentials';

describe('TURN REST credentials', () => {
  it('match the coturn use-auth-secret scheme on a known vector', () => {
    const c = turnCredentials('north-wind', 3600, (1_700_000_000 - 3600) * 1000);
    expect(c).toEqual({ username: '1700000000:tabswarm', credential: 'VbptTXoY9eFAMe5vdpxW1MqYUtA=', expiresAt: 1_700_000_000 });
  });

  it('expire ttl seconds from now and verify with an independent HMAC', () => {
    const now = Date.now();
    const c = turnCredentials('s3cret', 600, now);
    expect(c.expiresAt).toBe(Math.floor(now / 1000) + 600);
    expect(c.username).toBe(`${c.expiresAt}:tabswarm`);
    expect(c.credential).toBe(createHmac('sha1', 's3cret').update(c.username).digest('base64'));
    expect(c.credential).not.toBe(turnCredentials('other', 600, now).credential);
  });

  it('refuse an empty secret or a lifetime that is not a positive integer', () => {
    expect(() => turnCredentials('', 60)).toThrow(/empty TURN secret/);
    expect(() => turnCredentials('x', 0)).toThrow(/positive integer/);
    expect(() => turnCredentials('x', 1.5)).toThrow(/positive integer/);
  });
});
