import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildRun } from '../coordinator/run-builder';
import { RunViewStore } from '../coordinator/run-view-store';
import { LiveTable, renderTable } from './live-table';

const run = buildRun({ steps: 4, microbatches: 2, 'batch-size': 2, 'block-size': 8, 'run-id': 'lt', stages: 2 }, 20);

/** A non-TTY output that keeps what was written. */
function capture(): { out: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
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
