// A saved run of the coordinator (src/coordinator/run-state.ts) for tests: a tiny run after some steps, with a real
// signed ledger export, strikes, holdings and a non-finite loss.
import { DEFAULT_OPTIMIZER } from '../../src/model/stage';
import { parseRunConfig } from '../../src/protocol/run-config';
import { evenStages } from '../../src/coordinator/run-builder';
import { Ledger } from '../../src/coordinator/ledger';
import { exportLedger } from '../../src/coordinator/ledger-export';
import { encodeSavedRun, parseSavedRun, RUN_STATE_KIND, RUN_STATE_VERSION, type SavedRun } from '../../src/coordinator/run-state';
import { testFingerprint, testId, testIdentity } from './identity';

/** The room and coordinator key a sample saved run belongs to. */
export const savedRunOwner = (coord = 'coord') => ({ room: 'room-1', coordinator: testFingerprint(coord) });

export const savedRunRun = parseRunConfig({
  runId: 'saved',
  model: { n_layer: 4, n_head: 2, n_embd: 8, vocab_size: 10, block_size: 8 },
  stages: evenStages(4, 2),
  B: 1,
  T: 8,
  M: 4,
  steps: 6,
  schedule: { lr: 1e-3, minLr: 1e-4, warmup: 1, decaySteps: 4 },
  optimizer: { ...DEFAULT_OPTIMIZER, gradClip: 1 },
  seed: 1,
});

/** A saved run after `step` steps by coordinator key `coord`, with a real signed ledger. */
export async function sampleSavedRun(step = 3, coord = 'coord'): Promise<SavedRun> {
  const [a, b] = [testId('a'), testId('b')];
  const ledger = new Ledger({ run: savedRunRun });
  for (let s = 0; s < step; s++)
    ledger.work({
      step: s,
      entries: [
        { peerId: a, stage: 0, forward: 4, backward: 4, validations: 0 },
        { peerId: b, stage: 1, forward: 4, backward: 4, validations: 0 },
      ],
    });
  const text = await exportLedger(ledger, await testIdentity(coord), new Date(0));
  const reports = Array.from({ length: step }, (_, s) => ({
    step: s,
    attempts: 1,
    loss: s === 1 ? Number.NaN : 3 - s / 10,
    lr: 1e-3,
    gradNorm: s === 1 ? Number.POSITIVE_INFINITY : 1,
    scale: s === 1 ? 0 : 1,
    members: [[a], [b]],
    replicasAgree: true,
    ms: 12.5,
  }));
  const saved: SavedRun = {
    kind: RUN_STATE_KIND,
    version: RUN_STATE_VERSION,
    room: 'room-1',
    coordinator: testFingerprint(coord),
    run: savedRunRun,
    step,
    epoch: 2,
    membership: [[a], [b]],
    digests: ['0123abcd', null],
    holdings: [{ peer: a, checkpoints: [{ runId: 'saved', stage: 0, step: 0, digest: 'ff' }] }],
    reports,
    strikes: [{ peer: b, strikes: 1 }],
    evicted: [],
    ledger: null,
    savedAt: new Date(0).toISOString(),
  };
  const v = await parseSavedRun(encodeSavedRun({ ...saved, ledger: { text } }), savedRunOwner(coord));
  if (!v.ok) throw new Error(v.error);
  return v.saved;
}
