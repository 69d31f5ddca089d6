// A tab's identity (docs/trust.md "Identities"): a non-extractable P-256 key pair kept in IndexedDB (idb-keyval; a
// CryptoKey is structured-cloneable, so the private key is stored without ever being exported), created once per
// origin, role and slot, so a contributor keeps its id and credits across reloads. Slots: tabs of one browser open
// at once must not share a key (same key, same id: the server would replace one tab's connection by the other's),
// so each tab holds a Web Lock on the slot it uses for as long as it lives; a reloaded tab gets its slot (and key)
// back, a second tab takes the next free slot and its own key.
import { createStore, get, set, type UseStore } from 'idb-keyval';
import { generateKeyPair, identityOf, type Identity } from '../net/identity';

export type KeyRole = 'peer' | 'coordinator';

const MAX_SLOTS = 64;
let defaultStore: UseStore | null = null;
const store = (): UseStore => (defaultStore ??= createStore('tabswarm-keys', 'identities'));

function isKeyPair(v: unknown): v is CryptoKeyPair {
  const k = v as Partial<CryptoKeyPair> | null | undefined;
  return !!k && k.privateKey instanceof CryptoKey && k.publicKey instanceof CryptoKey;
}

/** Holds the Web Lock `name` for the rest of this page's life; false if another tab holds it. */
function claim(name: string): Promise<boolean> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) return Promise.resolve(true); // no Web Locks: one slot for everyone (very old browsers only)
  return new Promise((resolve) => {
    void locks.request(name, { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      // Returning a promise that never settles keeps the lock until the page goes away.
      return lock === null ? undefined : new Promise<void>(() => undefined);
    });
  });
}

const mine = new Map<KeyRole, Promise<Identity>>();

/**
 * This tab's identity for `role`: the stored key pair of the first free slot, created (non-extractable) if none. The
 * same for every call in one page.
 */
export function tabIdentity(role: KeyRole): Promise<Identity> {
  let p = mine.get(role);
  if (!p) {
    p = claimIdentity(role);
    mine.set(role, p);
    p.catch(() => mine.delete(role));
  }
  return p;
}

async function claimIdentity(role: KeyRole): Promise<Identity> {
  for (let slot = 0; slot < MAX_SLOTS; slot++) {
    const name = `tabswarm-identity/${role}/${slot}`;
    if (!(await claim(name))) continue;
    const stored: unknown = await get(name, store());
    if (isKeyPair(stored)) return identityOf(stored);
    const keys = await generateKeyPair(false);
    await set(name, keys, store());
    return identityOf(keys);
  }
  throw new Error(`more than ${MAX_SLOTS} tabs of this origin hold a ${role} key`);
}
