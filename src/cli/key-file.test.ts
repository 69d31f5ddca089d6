import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../net/identity';
import { EPHEMERAL_KEY, identityFromFlag, loadOrCreateKeyFile } from './key-file';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tabswarm-key-'));
  dirs.push(d);
  return d;
};

describe('key files', () => {
  it('creates a 0600 JWK file once (and its directory), then loads the same key from it', async () => {
    const path = join(tmp(), 'nested', 'peer.key');
    const a = await loadOrCreateKeyFile(path);
    expect(a.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ kind: 'tabswarm-identity', version: 1 });
    const b = await loadOrCreateKeyFile(path);
    expect(b.created).toBe(false);
    expect(b.identity.fingerprint).toBe(a.identity.fingerprint);
    // The loaded key signs what the created one verifies.
    expect(await verifySignature(a.identity.publicKey, 'x', await b.identity.sign('x'))).toBe(true);
  });

  it('refuses a key file others can read, and one that is not a key file', async () => {
    const path = join(tmp(), 'k.key');
    await loadOrCreateKeyFile(path);
    chmodSync(path, 0o644);
    await expect(loadOrCreateKeyFile(path)).rejects.toThrow(/accessible by other users .* chmod 600/);
    const bad = join(tmp(), 'bad.key');
    writeFileSync(bad, '{"kind":"something-else"}', { mode: 0o600 });
    await expect(loadOrCreateKeyFile(bad)).rejects.toThrow(/not a tabswarm identity file/);
    writeFileSync(bad, 'nope', { mode: 0o600 });
    await expect(loadOrCreateKeyFile(bad)).rejects.toThrow(/not JSON/);
  });

  it('`--key ephemeral` (or no default) gives a fresh key each time, writing nothing', async () => {
    const never = join(tmp(), 'never.key');
    const a = await identityFromFlag(EPHEMERAL_KEY, never);
    const b = await identityFromFlag(undefined, null);
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(existsSync(never)).toBe(false);
  });
});
