// The coordinator's saved run (src/coordinator/run-state.ts): a round trip keeps everything a resumed coordinator
// needs (non-finite figures included), and a foreign, damaged, finished, other-room or other-key file — or one whose
// ledger was edited — is refused as a whole with a message saying why.
import { describe, expect, it } from 'vitest';
import { encodeSavedRun, parseSavedRun } from './run-state';
import { testId } from '../../tests/support/identity';
import { sampleSavedRun, savedRunOwner, savedRunRun } from '../../tests/support/saved-run';

const owner = savedRunOwner;

describe('saved run', () => {
  it('round-trips: config, step, membership, digests, holdings, reports (NaN and Infinity as null -> NaN), strikes, ledger', async () => {
    const s = await sampleSavedRun();
    const v = await parseSavedRun(encodeSavedRun(s), owner());
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.saved.run).toEqual(savedRunRun);
    expect(v.saved.step).toBe(3);
    expect(v.saved.membership).toEqual(s.membership);
    expect(v.saved.digests).toEqual(['0123abcd', null]);
    expect(v.saved.holdings).toEqual(s.holdings);
    expect(v.saved.strikes).toEqual(s.strikes);
    expect(v.saved.reports.map((r) => r.loss)).toEqual([3, Number.NaN, 2.8]);
    expect(Number.isNaN(v.saved.reports[1].gradNorm)).toBe(true);
    expect(v.saved.ledger?.doc.step).toBe(3);
    expect(v.saved.ledger?.text).toBe(s.ledger?.text);
  });

  it('refuses another room, another key, a finished run, a foreign or damaged file, and an edited ledger', async () => {
    const s = await sampleSavedRun();
    const text = encodeSavedRun(s);
    const refused = async (t: string, o = owner()) => {
      const v = await parseSavedRun(t, o);
      expect(v.ok).toBe(false);
      return v.ok ? '' : v.error;
    };
    expect(await refused(text, { ...owner(), room: 'room-2' })).toMatch(/of room "room-1", not "room-2"/);
    expect(await refused(text, owner('other'))).toMatch(/belongs to coordinator key .* not this key/);
    const done = await sampleSavedRun(5);
    expect(await refused(encodeSavedRun({ ...done, step: 6, reports: [...done.reports, { ...done.reports[4], step: 5 }] }))).toMatch(
      /run saved is finished \(all 6 steps done\)/,
    );
    expect(await refused('{"kind":"tabswarm-ledger"}')).toMatch(/not a tabswarm saved run/);
    expect(await refused('not json')).toMatch(/not JSON/);
    expect(await refused(text.replace('"epoch":2', '"epoch":-2'))).toMatch(/damaged: epoch/);
    expect(await refused(encodeSavedRun({ ...s, membership: [[testId('a')]] }))).toMatch(/membership of 1 stages/);
    expect(await refused(encodeSavedRun({ ...s, membership: [[testId('a')], [testId('a')]] }))).toMatch(/member twice/);
    expect(await refused(encodeSavedRun({ ...s, reports: [s.reports[1], s.reports[0]] }))).toMatch(/out of order/);
    expect(await refused(encodeSavedRun({ ...s, step: 2 }))).toMatch(/a report of step 2 at step 2/);
    const edited = s.ledger?.text.replace(/"credits":"(\d)/, '"credits":"9') ?? '';
    expect(await refused(encodeSavedRun({ ...s, ledger: { text: edited } }))).toMatch(/ledger is refused/);
    // A ledger signed by another key (the right key's file otherwise).
    const foreign = await sampleSavedRun(3, 'other');
    expect(await refused(encodeSavedRun({ ...s, ledger: foreign.ledger }))).toMatch(/ledger is refused: .*not by the expected/);
  });
});
