// Persisted matmul tuning (src/gpu/tuning-cache.ts): the store key separates adapters and kernel versions, the record
// schema rejects corrupt, foreign and stale records (never throwing), and on the real Node adapter a record that
// cannot be used is overwritten by a fresh, valid one while a usable one is adopted without timing.
import { describe, expect, it } from 'vitest';
import { matmulChoiceTable, MATMUL_KERNELS_VERSION } from '../../src/gpu/ops/matmul';
import {
  adapterIdentity,
  parseTuningRecord,
  tuneMatmulCached,
  tuningKey,
  type AdapterIdentity,
  type TuningRecord,
  type TuningStore,
} from '../../src/gpu/tuning-cache';
import { gpuRuntime } from '../support/gpu';
import { rng, testSeed } from '../support/random';

const id: AdapterIdentity = { vendor: 'mesa', architecture: 'llvm', device: 'lavapipe', description: 'llvmpipe (LLVM 15, 256 bits)' };
const record = (over: Partial<TuningRecord> = {}): TuningRecord => ({
  format: 1,
  adapter: { ...id },
  kernels: MATMUL_KERNELS_VERSION,
  choices: [{ shape: '16x32x24', variant: 'tiled', timingsMs: { naive: 2, tiled: 1 } }],
  ...over,
});

class MapStore implements TuningStore {
  readonly map = new Map<string, unknown>();
  async get(key: string): Promise<unknown> {
    return this.map.get(key);
  }
  async set(key: string, value: unknown): Promise<void> {
    this.map.set(key, structuredClone(value));
  }
}

describe('tuning cache key and schema', () => {
  it('keys by every identity field and the kernel version', () => {
    const base = tuningKey(id);
    expect(tuningKey({ ...id })).toBe(base);
    for (const f of ['vendor', 'architecture', 'device', 'description'] as const) expect(tuningKey({ ...id, [f]: id[f] + 'x' })).not.toBe(base);
    expect(tuningKey(id, 'g9-deadbeef')).not.toBe(base);
    // Field boundaries cannot be shifted to forge a collision.
    expect(tuningKey({ ...id, vendor: 'a|b', architecture: 'c' })).not.toBe(tuningKey({ ...id, vendor: 'a', architecture: 'b|c' }));
    expect(MATMUL_KERNELS_VERSION).toMatch(/^g\d+-[0-9a-f]{8}$/);
  });

  it('accepts exactly a valid record for this adapter and kernel version', () => {
    expect(parseTuningRecord(record(), id)?.choices).toEqual(record().choices);
    expect(parseTuningRecord(record({ adapter: { ...id, device: 'other' } }), id)).toBeNull();
    expect(parseTuningRecord(record({ kernels: 'g0-00000000' }), id)).toBeNull();
    const unknownVariant = { ...record(), choices: [{ shape: 's', variant: 'rb99', timingsMs: {} }] };
    for (const bad of [
      unknownVariant,
      undefined,
      null,
      7,
      'x',
      [],
      {},
      { ...record(), format: 2 },
      { ...record(), extra: 1 },
      { ...record(), choices: [{ shape: 's' }] },
    ]) {
      expect(parseTuningRecord(bad, id)).toBeNull();
    }
  });

  it('never throws on mutated records (seeded, 10,000)', () => {
    const rand = rng(testSeed('tuning-cache mutate'));
    const junk = [undefined, null, 0, -1, NaN, '', 'x', [], {}, true, { a: 1 }];
    let accepted = 0;
    let benign = 0;
    for (let i = 0; i < 10_000; i++) {
      const r = JSON.parse(JSON.stringify(record())) as Record<string, unknown>;
      const paths: Array<[Record<string, unknown>, string]> = [
        [r, 'format'],
        [r, 'adapter'],
        [r, 'kernels'],
        [r, 'choices'],
        [r.adapter as Record<string, unknown>, 'vendor'],
        [(r.choices as Array<Record<string, unknown>>)[0], 'variant'],
        [(r.choices as Array<Record<string, unknown>>)[0], 'timingsMs'],
      ];
      const [obj, k] = paths[Math.floor(rand() * paths.length)];
      const v = junk[Math.floor(rand() * junk.length)];
      if (rand() < 0.2) delete obj[k];
      else obj[k] = v;
      // The harmless mutations: other valid timings ({} or { a: 1 }: a loaded choice's timings are informative
      // only) and no choices at all ([]); everything else breaks the schema or the identity.
      const js = k in obj ? JSON.stringify(v) : undefined;
      if ((k === 'timingsMs' && (js === '{}' || js === '{"a":1}')) || (k === 'choices' && js === '[]')) benign++;
      if (parseTuningRecord(r, id)) accepted++;
    }
    expect(benign).toBeGreaterThan(0);
    expect(accepted).toBe(benign);
  });
});

describe('tuneMatmulCached on the Node adapter', () => {
  it('overwrites an unusable record with a valid one and adopts a usable one without timing', async () => {
    const rt = await gpuRuntime();
    const me = adapterIdentity(rt.handle.report);
    const key = tuningKey(me);
    const store = new MapStore();
    store.map.set(key, { format: 1, adapter: 'garbage' });
    const shapes = [{ M: 8, N: 12, K: 20, transA: true }];
    const r1 = await tuneMatmulCached(rt, shapes, store, { reps: 1, variants: ['naive', 'tiled'] });
    expect(r1.rejected).toBe(true);
    const saved = parseTuningRecord(store.map.get(key), me);
    expect(saved?.choices.find((c) => c.shape === '8x12x20 tA')?.variant).toMatch(/^(naive|tiled)$/);

    // A stored choice for a shape not yet tuned in this process is adopted as is (no timing).
    const fresh = { shape: '8x12x28 tB', variant: 'naive', timingsMs: {} };
    store.map.set(key, { ...saved, choices: [...(saved?.choices ?? []), fresh] });
    const r2 = await tuneMatmulCached(rt, [{ M: 8, N: 12, K: 28, transB: true }], store, { reps: 1, variants: ['tiled'] });
    expect(r2).toEqual({ loaded: (saved?.choices.length ?? 0) + 1, timed: 0, rejected: false });
    expect(matmulChoiceTable(rt).get('8x12x28 tB')).toBe('naive');
  }, 120_000);
});
