// A resumed coordinator re-adopting its swarm (src/coordinator/adoption.ts, docs/resilience.md "Coordinator
// restart"), against a fake control plane and scripted peers (no GPU, no network): the run saved by one Coordinator,
// through the saved run's text (run-state.ts), resumed by another.
import { describe, expect, it } from 'vitest';
import type { MemberClaim } from '../protocol/messages';
import { Coordinator } from './coordinator';
import { announce, FakePlane, scriptPeers, unitRun } from '../../tests/support/fake-plane';
import type { RunConfig } from '../protocol/run-config';
import { PROTOCOL_VERSION } from '../protocol/version';
import { encodeSavedRun, parseSavedRun, RUN_STATE_KIND, RUN_STATE_VERSION, type SavedRun } from './run-state';

function run(over: Partial<RunConfig> = {}): RunConfig {
  return unitRun({ runId: 'resume', steps: 5, ...over });
}

const FP = 'ab'.repeat(32);

/** Scripted peers answering like correct ones; they answer `reannounce` with their claims (`claims`, by peer). */
function scriptResumable(plane: FakePlane, claims: Map<string, MemberClaim> = new Map()): void {
  scriptPeers(plane, { claims, loss: (step, mb) => 2 + mb + step });
}

/** Runs a fresh coordinator for `upTo` steps of `r` with peers a, b, c, d and returns its saved run (then closes it). */
async function savedAfter(r: RunConfig, upTo: number): Promise<SavedRun> {
  const plane = new FakePlane();
  const c = new Coordinator(plane, { run: r, minPeers: 4 });
  scriptResumable(plane);
  const saved = new Promise<SavedRun>((resolve) => {
    c.events.on('step', (report) => {
      if (report.step !== upTo - 1) return;
      const state = c.saveState();
      c.close();
      resolve({ kind: RUN_STATE_KIND, version: RUN_STATE_VERSION, room: 'r', coordinator: FP, run: r, ...state, ledger: null, savedAt: 'now' });
    });
  });
  for (const p of ['a', 'b', 'c', 'd']) announce(plane, p);
  const s = await saved;
  // Through its text, as a restarted process reads it.
  const v = await parseSavedRun(encodeSavedRun(s), { room: 'r', coordinator: FP });
  if (!v.ok) throw new Error(v.error);
  return v.saved;
}

const claim = (stage: number, step: number, attempt: number, digest: string, runId = 'resume'): MemberClaim => ({
  runId,
  stage,
  step,
  attempt,
  digest,
});

describe('Coordinator resume (re-adoption)', () => {
  it('re-adopts the saved swarm at its step: no state transfer, attempts above the claimed ones, reports continue', async () => {
    const r = run();
    const saved = await savedAfter(r, 2);
    expect(saved.step).toBe(2);
    expect(saved.membership).toEqual([
      ['a', 'c'],
      ['b', 'd'],
    ]);
    expect(saved.digests).toEqual(['d0-1', 'd1-1']);
    const plane = new FakePlane();
    const claims = new Map([
      ['a', claim(0, 2, 0, 'd0-1')],
      ['b', claim(1, 2, 0, 'd1-1')],
      ['c', claim(0, 2, 3, 'd0-1')],
      ['d', claim(1, 2, 1, 'd1-1')],
    ]);
    scriptResumable(plane, claims);
    const c = new Coordinator(plane, { run: saved.run, minPeers: 4, resume: saved });
    const reports = await c.finished();
    expect(plane.ofType('reannounce')[0]).toEqual({ type: 'reannounce', runId: 'resume', step: 2 });
    expect(plane.sentOf('swarm-assign').map((m) => [m.to, m.msg.stage, m.msg.adopt])).toEqual([
      ['a', 0, true],
      ['b', 1, true],
      ['c', 0, true],
      ['d', 1, true],
    ]);
    const members = plane.ofType('swarm-members')[0];
    expect(members.step).toBe(2);
    expect(members.joins).toEqual([]);
    expect(members.epoch).toBe(saved.epoch + 1);
    const begins = plane.ofType('step-begin');
    expect(begins.map((b) => [b.step, b.attempt])).toEqual([
      [2, 4],
      [3, 0],
      [4, 0],
    ]);
    expect(reports.map((x) => x.step)).toEqual([0, 1, 2, 3, 4]);
    expect(reports.slice(0, 2)).toEqual(saved.reports);
    expect(reports[2].loss).toBeCloseTo((2 + 3 + 4 + 5) / 4 + 2, 12);
    c.close();
  });

  it('claimants behind (or with another digest) keep their stage and join from one at the step; the silent are gone', async () => {
    const r = run();
    const saved = await savedAfter(r, 3);
    const plane = new FakePlane();
    const claims = new Map([
      ['a', claim(0, 3, 0, 'd0-2')],
      ['b', claim(1, 3, 0, 'd1-2')],
      ['c', claim(0, 2, 0, 'd0-1')], // behind
      ['e', claim(1, 3, 0, 'bad')], // not a saved member, wrong digest
    ]);
    scriptResumable(plane, claims);
    const c = new Coordinator(plane, { run: saved.run, minPeers: 4, resume: saved, adoptWaitMs: 100 });
    const adopted = new Promise((resolve) => c.events.once('adopted', resolve));
    const reports = await c.finished();
    expect(await adopted).toEqual({ step: 3, attempt: 1, members: ['a', 'b'], joiners: ['c', 'e'] });
    const members = plane.ofType('swarm-members')[0];
    expect(members.stages).toEqual([
      ['a', 'c'],
      ['b', 'e'],
    ]);
    expect(members.joins).toEqual([
      { peer: 'c', stage: 0, source: 'a' },
      { peer: 'e', stage: 1, source: 'b' },
    ]);
    expect(reports.map((x) => x.step)).toEqual([0, 1, 2, 3, 4]);
    expect(reports[3].members).toEqual([
      ['a', 'c'],
      ['b', 'e'],
    ]);
    c.close();
  });

  it('goes back to the newest step every stage has a claimant at, re-doing the reports from there', async () => {
    const saved = await savedAfter(run(), 3);
    const plane = new FakePlane();
    const claims = new Map([
      ['a', claim(0, 3, 0, 'd0-2')],
      ['b', claim(1, 2, 0, 'd1-1')], // stage 1 only has a claimant at step 2
      ['c', claim(0, 2, 0, 'd0-1')],
    ]);
    scriptResumable(plane, claims);
    const c = new Coordinator(plane, { run: saved.run, minPeers: 4, resume: saved, adoptWaitMs: 100 });
    const reports = await c.finished();
    expect(plane.ofType('swarm-members')[0].joins).toEqual([{ peer: 'a', stage: 0, source: 'c' }]);
    expect(plane.ofType('step-begin')[0].step).toBe(2);
    expect(reports.map((x) => x.step)).toEqual([0, 1, 2, 3, 4]);
    c.close();
  });

  it('takes back from the write-ahead the report of a step the peers applied but the saved run did not reach', async () => {
    // The run as written before step 2's update went out (run-saver's write-ahead): 2 steps saved, step 2 applying.
    const r = run();
    const plane0 = new FakePlane();
    const c0 = new Coordinator(plane0, { run: r, minPeers: 4 });
    scriptResumable(plane0);
    const written = new Promise<SavedRun>((resolve) => {
      c0.onApplying = async (report) => {
        if (report.step !== 2) return;
        const state = c0.saveState();
        c0.close();
        resolve({ kind: RUN_STATE_KIND, version: RUN_STATE_VERSION, room: 'r', coordinator: FP, run: r, ...state, ledger: null, savedAt: 'now' });
        return new Promise<void>(() => undefined); // the coordinator is gone before its update goes out
      };
    });
    for (const p of ['a', 'b', 'c', 'd']) announce(plane0, p);
    const v = await parseSavedRun(encodeSavedRun(await written), { room: 'r', coordinator: FP });
    if (!v.ok) throw new Error(v.error);
    const saved = v.saved;
    expect(saved.step).toBe(2);
    expect(saved.applying?.step).toBe(2);
    expect(saved.applying?.loss).toBeCloseTo((4 + 5 + 6 + 7) / 4, 12);
    // The peers applied step 2 (say its update did go out): they claim 3 steps applied.
    const claims = new Map([
      ['a', claim(0, 3, 0, 'd0-2')],
      ['b', claim(1, 3, 0, 'd1-2')],
      ['c', claim(0, 3, 0, 'd0-2')],
      ['d', claim(1, 3, 0, 'd1-2')],
    ]);
    const resumeWith = async (from: SavedRun) => {
      const plane = new FakePlane();
      scriptResumable(plane, claims);
      const c = new Coordinator(plane, { run: from.run, minPeers: 4, resume: from });
      const reports = await c.finished();
      c.close();
      return { reports, begins: plane.ofType('step-begin').map((b) => b.step) };
    };
    const got = await resumeWith(saved);
    expect(got.begins[0]).toBe(3); // step 2 is not re-done
    expect(got.reports.map((x) => x.step)).toEqual([0, 1, 2, 3, 4]);
    expect(got.reports[2]).toEqual(saved.applying);
    // Without the write-ahead (a saved run of before it), step 2's report was lost.
    const { applying: _, ...older } = saved;
    expect((await resumeWith(older)).reports.map((x) => x.step)).toEqual([0, 1, 3, 4]);
    // A write-ahead report of another step than the saved run's is refused as damage.
    const bad = encodeSavedRun({ ...saved, applying: { ...saved.reports[0], step: 1 } });
    const refused = await parseSavedRun(bad, { room: 'r', coordinator: FP });
    expect(refused.ok ? '' : refused.error).toMatch(/write-ahead report of step 1 at step 2/);
  });

  it('waits while some stage has no claimant; a claim of another run is a fresh join', async () => {
    const saved = await savedAfter(run(), 1);
    const plane = new FakePlane();
    const claims = new Map([
      ['a', claim(0, 1, 0, 'd0-0')],
      ['c', claim(0, 1, 0, 'd0-0')],
    ]);
    scriptResumable(plane, claims);
    const c = new Coordinator(plane, { run: saved.run, minPeers: 4, resume: saved, adoptWaitMs: 60_000 });
    let adopted = false;
    c.events.on('adopted', () => (adopted = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(adopted).toBe(false);
    plane.from('x', { type: 'hello', protocol: PROTOCOL_VERSION });
    plane.from('x', { type: 'peer-info', platform: 'node', gpu: true, member: claim(1, 1, 0, 'd1-0', 'another-run') });
    expect(plane.sentOf('swarm-assign').find((m) => m.to === 'x')?.msg.adopt).toBeUndefined();
    for (const p of ['b', 'd']) {
      plane.from(p, { type: 'hello', protocol: PROTOCOL_VERSION });
      plane.from(p, { type: 'peer-info', platform: 'node', gpu: true, member: claim(1, 1, 0, 'd1-0') });
    }
    const reports = await c.finished();
    expect(adopted).toBe(true);
    expect(reports.map((x) => x.step)).toEqual([0, 1, 2, 3, 4]);
    c.close();
  });

  it('a running coordinator takes back a member that vanished and returns with its claim (signaling reconnect)', async () => {
    const plane = new FakePlane();
    const c = new Coordinator(plane, { run: run({ steps: 3 }), minPeers: 4 });
    scriptResumable(plane);
    let back = false;
    c.events.on('step', (rep) => {
      if (rep.step !== 0 || back) return;
      back = true;
      plane.leave('c');
      plane.from('c', { type: 'hello', protocol: PROTOCOL_VERSION });
      plane.from('c', { type: 'peer-info', platform: 'node', gpu: true, member: claim(0, 1, 0, 'd0-0') });
    });
    for (const p of ['a', 'b', 'c', 'd']) announce(plane, p);
    const reports = await c.finished();
    const assign = plane.sentOf('swarm-assign').filter((m) => m.to === 'c');
    expect(assign.map((m) => [m.msg.stage, m.msg.adopt])).toEqual([
      [0, undefined],
      [0, true],
    ]);
    expect(plane.ofType('swarm-members')[1].joins).toEqual([{ peer: 'c', stage: 0, source: 'a' }]);
    expect(reports.map((x) => x.members)).toEqual([
      [
        ['a', 'c'],
        ['b', 'd'],
      ],
      [
        ['a', 'c'],
        ['b', 'd'],
      ],
      [
        ['a', 'c'],
        ['b', 'd'],
      ],
    ]);
    c.close();
  });
});
