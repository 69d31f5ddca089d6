// TURN REST credentials (draft-uberti-behave-turn-rest, what coturn's `use-auth-secret` / `static-auth-secret`
// checks): username `<unix expiry>:<user>`, password base64(HMAC-SHA1(secret, username)). The server and the TURN
// server share only the secret; a page gets credentials that stop working at the expiry, and never the secret.
import { createHmac } from 'node:crypto';

export interface TurnCredentials {
  username: string;
  credential: string;
  /** Unix seconds after which the TURN server refuses them. */
  expiresAt: number;
}

/** The label after the expiry in every username (coturn only reads the expiry). */
export const TURN_USER = 'tabswarm';

export function turnCredentials(secret: string, ttlS: number, nowMs: number = Date.now(), user: string = TURN_USER): TurnCredentials {
  if (secret.length === 0) throw new Error('empty TURN secret');
  if (!Number.isInteger(ttlS) || ttlS <= 0) throw new Error(`TURN credential lifetime must be a positive integer of seconds, not ${ttlS}`);
  const expiresAt = Math.floor(nowMs / 1000) + ttlS;
  const username = `${expiresAt}:${user}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, expiresAt };
}
