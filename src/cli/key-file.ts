// Node key files (docs/trust.md "Identities"): a JWK key pair in a file of mode 0600, loaded if it exists, created
// once otherwise, so a CLI coordinator keeps its room binding (the fingerprint peers join with) and a CLI peer its
// identity and credits across restarts. `--key FILE` picks the file; `--key ephemeral` a fresh in-memory key.
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ephemeralIdentity, exportIdentity, generateKeyPair, identityOf, importIdentity, type Identity } from '../net/identity';
import { UsageError } from './args';

/** `--key ephemeral`: a fresh key for this process only. */
export const EPHEMERAL_KEY = 'ephemeral';

/** ~/.tabswarm/<role>.key */
export function defaultKeyPath(role: 'coordinator' | 'peer'): string {
  return join(homedir(), '.tabswarm', `${role}.key`);
}

/** Loads the key file at `path`, or creates it (and its directory, mode 0700) with a new key pair. */
export async function loadOrCreateKeyFile(path: string): Promise<{ identity: Identity; created: boolean }> {
  let text: string | null = null;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`cannot read key file ${path}: ${(err as Error).message}`);
  }
  if (text !== null) {
    // Like ssh: a private key others can read is refused, not silently used.
    if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
      throw new UsageError(`key file ${path} is accessible by other users (mode ${(statSync(path).mode & 0o777).toString(8)}): chmod 600 ${path}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UsageError(`key file ${path} is not JSON`);
    }
    try {
      return { identity: await importIdentity(json), created: false };
    } catch (err) {
      throw new UsageError(`key file ${path}: ${(err as Error).message}`);
    }
  }
  const identity = await identityOf(await generateKeyPair(true));
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // 'wx': never overwrite a key file another process created meanwhile.
  writeFileSync(path, `${JSON.stringify(await exportIdentity(identity), null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600); // the umask may have narrowed it further, never widened; make it exact
  return { identity, created: true };
}

/** The identity a `--key` flag names: a file (default `fallback`), or `ephemeral`; `fallback` null means ephemeral. */
export async function identityFromFlag(flag: string | undefined, fallback: string | null, say?: (s: string) => void): Promise<Identity> {
  const path = flag ?? fallback;
  if (path === null || path === EPHEMERAL_KEY) return ephemeralIdentity();
  const { identity, created } = await loadOrCreateKeyFile(path);
  say?.(`${created ? 'created' : 'using'} key ${path} (fingerprint ${identity.fingerprint})`);
  return identity;
}
