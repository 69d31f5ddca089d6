import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildRun } from '../coordinator/run-builder';
import { RunViewStore } from '../coordinator/run-view-store';
import { LiveTable, renderTable } from './live-table';

const run = buildRun({ steps: 4, microbatches: 2, 'batch-size': 2, 'block-size': 8, 'run-id': 'lt', stages: 2 }, 20);

/** An output that keeps what was written (a terminal of 160 x 40 when `tty`). */
function capture(tty = false): { out: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  if (tty) Object.assign(w, { isTTY: true, columns: 160, rows: 40 });
  return { out: w as unknown as NodeJS.WriteStream, text: () => text };
}

describe('live table: stage loss, frozen peers and moves are shown (docs/resilience.md)', () => {
  it('the table says the run is paused, and why, until it resumes', () => {
    const store = new RunViewStore();
    store.dispatch({ kind: 'started', run });
    store.dispatch({ kind: 'paused', step: 2, reason: 'stage 1 has no live replica: restoring it', stages: [1] });
    expect(renderTable(store.view).join('\n')).toContain('PAUSED at step 2: stage 1 has no live replica: restoring it');
    store.dispatch({ kind: 'resumed', step: 1, from: 2, stages: [1] });
    expect(renderTable(store.view).join('\n')).not.toContain('PAUSED');
  });

  it('a log (not a TTY) gets one line per pause, resume, frozen peer and move', () => {
    const store = new RunViewStore();
    const { out, text } = capture();
    const table = new LiveTable(store, { out, tty: false });
    store.dispatch({ kind: 'started', run });
    store.dispatch({ kind: 'frozen', peerId: 'p1', reason: 'no pong within 2000 ms' });
    store.dispatch({ kind: 'moved', peerId: 'p2', from: 0, to: 1, reason: 'stage 1 is the bottleneck' });
    store.dispatch({ kind: 'paused', step: 3, reason: 'stage 0 has no live replica', stages: [0] });
    store.dispatch({ kind: 'resumed', step: 3, from: 3, stages: [0] });
    table.stop();
    const lines = text().split('\n');
    // The four event lines, then the final table stop() prints.
    expect(lines[4]).toMatch(/^swarm {2}step 0\/4/);
    expect(lines[0]).toContain('p1 frozen: no pong within 2000 ms');
    expect(lines[1]).toContain('p2 moved from stage 0 to stage 1');
    expect(lines[2]).toContain('stage 0 has no live replica');
    expect(lines[3]).toMatch(/resumed/);
  });
});

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const report = (step: number, loss: number) => ({
  step,
  attempts: 1,
  loss,
  lr: 1e-3,
  gradNorm: 1,
  scale: 1,
  members: [[A], [B]],
  replicasAgree: true,
  ms: 120,
});

/** A two-stage run with one finished step. */
function twoPeers(store: RunViewStore): void {
  store.dispatch({ kind: 'started', run });
  for (const [id, stage] of [
    [A, 0],
    [B, 1],
  ] as const) {
    store.dispatch({ kind: 'peer-joined', peerId: id });
    store.dispatch({ kind: 'assigned', peerId: id, stage });
  }
  store.dispatch({ kind: 'step', report: report(0, 3.5) });
}

describe('live table: cli-table3 rows, log-update on a TTY, plain lines in a log', () => {
  it('the table has one row per peer, by stage, with a header row', () => {
    const store = new RunViewStore();
    twoPeers(store);
    const lines = renderTable(store.view, 'demo lt');
    expect(lines[0]).toMatch(/^demo lt {2}step 1\/4 {2}loss 3\.5000/);
    const rowA = lines.findIndex((l) => l.includes(A));
    const rowB = lines.findIndex((l) => l.includes(B));
    expect(lines.findIndex((l) => /peer .*platform .*stage .*state .*mb .*bench tok\/s/.test(l))).toBeLessThan(rowA);
    expect(rowA).toBeLessThan(rowB); // stage 0 before stage 1
    expect(lines[rowA]).toMatch(new RegExp(`${A} .* 0 `));
  });

  it('a log gets `step N/M` lines the tests and people grep, and the table once at the end; no escape codes', () => {
    const store = new RunViewStore();
    const { out, text } = capture();
    const table = new LiveTable(store, { out, tty: false });
    twoPeers(store);
    store.dispatch({ kind: 'step', report: report(1, 3.1) });
    table.stop();
    table.stop(); // idempotent
    const lines = text().split('\n');
    expect(lines[0]).toMatch(/^step 1\/4 {2}loss 3\.5000 .* \[a+:s0 b+:s1\]$/);
    expect(lines[1]).toMatch(/^step 2\/4 {2}loss 3\.1000/);
    expect(lines.filter((l) => l.includes(A) && !l.startsWith('step'))).toHaveLength(1); // one final table
    expect(text()).not.toContain('\x1b[');
  });

  it('a TTY gets the table redrawn in place (erase codes, no per-step lines) and keeps the last frame', () => {
    const store = new RunViewStore();
    const { out, text } = capture(true);
    const table = new LiveTable(store, { out });
    twoPeers(store);
    table.stop();
    expect(text()).toContain('\x1b['); // log-update's erase-lines
    expect(text()).not.toMatch(/^step 1\/4/m);
    expect(text()).toContain(B);
    const afterStop = text().length;
    store.dispatch({ kind: 'step', report: report(1, 3.1) });
    expect(text().length).toBe(afterStop); // stopped: nothing more is drawn
  });
});
