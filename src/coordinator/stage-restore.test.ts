// Stage loss, rollback, custody and reload restores against a fake control plane and scripted peers (no GPU, no
// network): the coordinator's side of docs/resilience.md "Stage loss", "Custody" and "Tab reload".
import { describe, expect, it } from 'vitest';
import { stepOwners, type CheckpointRef, type ControlMessage } from '../protocol/messages';
import { Coordinator } from './coordinator';
import { announce, FakePlane, unitRun } from '../../tests/support/fake-plane';
import type { RunConfig } from '../protocol/run-config';

function run(steps: number, every: number): RunConfig {
  return unitRun({ M: 2, steps, checkpoint: { every, keep: 3 } });
}

const digestOf = (stage: number, step: number) => `c${stage}-${step}`;

/**
 * A scripted swarm of correct peers that keep checkpoints: each saves its stage after every `every`-th applied step
 * and reports checkpoint-saved, stores custody copies, restores what swarm-members names and reports the digest.
 */
class Swarm {
  readonly dead = new Set<string>();
  readonly stageOf = new Map<string, number>();
  readonly store = new Map<string, CheckpointRef[]>();
  /** Return true to swallow a message (e.g. to let a peer vanish first). */
  intercept: (msg: ControlMessage) => boolean = () => false;

  constructor(
    readonly plane: FakePlane,
    readonly r: RunConfig,
  ) {
    plane.responder = (msg, to) => this.respond(msg, to);
  }

  private say(p: string, m: ControlMessage): void {
    if (!this.dead.has(p)) this.plane.from(p, m);
  }

  save(p: string, stage: number, step: number): void {
    const ref = { runId: this.r.runId, stage, step, digest: digestOf(stage, step) };
    this.store.set(p, [...(this.store.get(p) ?? []).filter((x) => !(x.stage === stage && x.step === step)), ref]);
    this.say(p, { type: 'checkpoint-saved', ...ref });
  }

  /** hello + peer-info (with the checkpoints it holds). */
  announce(p: string, throughput = 100): void {
    this.dead.delete(p);
    const checkpoints = this.store.get(p);
    announce(this.plane, p, throughput, checkpoints ? { checkpoints } : {});
  }

  kill(p: string): void {
    this.dead.add(p);
    this.plane.ev.emit('peer-left', { peerId: p });
  }

  private respond(msg: ControlMessage, to?: string): void {
    if (this.intercept(msg)) return;
    switch (msg.type) {
      case 'swarm-assign':
        if (to) this.stageOf.set(to, msg.stage);
        return;
      case 'swarm-members': {
        for (const p of msg.stages.flat()) {
          const r = msg.restores?.find((x) => x.peer === p);
          const j = msg.joins.find((x) => x.peer === p);
          // A restore loads the peer's own checkpoint; a join from a checkpoint gets the source's stored one.
          const held = r && this.store.get(p)?.find((x) => x.stage === r.stage && x.step === r.step);
          const copied =
            j?.checkpoint !== undefined ? this.store.get(j.source)?.find((x) => x.stage === j.stage && x.step === j.checkpoint) : undefined;
          const digest = held?.digest ?? copied?.digest ?? (r || j ? digestOf(this.stageOf.get(p) ?? -1, msg.step) : undefined);
          this.say(p, { type: 'swarm-ready', epoch: msg.epoch, ...(digest ? { digest } : {}) });
        }
        return;
      }
      case 'step-begin': {
        const { step, attempt } = msg;
        const last = msg.members[msg.members.length - 1];
        stepOwners(msg).forEach((o, mb) => {
          if (this.dead.has(o)) return;
          this.say(last[mb % last.length], { type: 'mb-loss', step, attempt, mb, loss: 2 + step });
          this.say(o, { type: 'mb-done', step, attempt, mb });
        });
        return;
      }
      case 'step-reduce':
        msg.members.forEach((m, s) =>
          m.forEach((p) =>
            this.say(p, { type: 'step-trace', step: msg.step, attempt: msg.attempt, stage: s, part: 0, parts: 1, backward: [], sent: [], recv: [] }),
          ),
        );
        msg.members.forEach((m, s) => this.say(m[0], { type: 'grad-sumsq', step: msg.step, attempt: msg.attempt, stage: s, value: 1 }));
        return;
      case 'step-apply': {
        const applied = [...this.stageOf].filter(([p]) => !this.dead.has(p));
        for (const [p, s] of applied) this.say(p, { type: 'step-done', step: msg.step, attempt: msg.attempt, stage: s, digest: `p${s}-${msg.step}` });
        if ((msg.step + 1) % (this.r.checkpoint?.every ?? 5) === 0) for (const [p, s] of applied) this.save(p, s, msg.step + 1);
        return;
      }
      case 'custody':
        if (to === msg.keeper) this.save(msg.keeper, msg.stage, msg.step);
        return;
      default:
        return;
    }
  }
}

describe('stage loss', () => {
  it("custody: a stage's only replica dies; a new peer joins from the custodian's copy at the current step", async () => {
    const plane = new FakePlane();
    const r = run(6, 2);
    const c = new Coordinator(plane, { run: r, minPeers: 2 });
    const sw = new Swarm(plane, r);
    sw.intercept = (msg) => {
      if (msg.type === 'step-begin' && msg.step === 4 && !sw.dead.has('b')) {
        sw.kill('b');
        return true;
      }
      return false;
    };
    const paused: unknown[] = [];
    c.events.on('paused', (e) => {
      paused.push(e);
      sw.announce('n'); // a fresh peer: no checkpoints; the empty stage 1 is where it goes
    });
    sw.announce('a');
    sw.announce('b');
    const reports = await c.finished();
    // Custody after step 2 (stage 0 -> b) and step 4 (stage 1 -> a); after step 6 none (the run is over).
    expect(plane.ofType('custody').filter((_, i) => i % 2 === 0)).toEqual([
      { type: 'custody', stage: 0, step: 2, source: 'a', keeper: 'b' },
      { type: 'custody', stage: 1, step: 4, source: 'b', keeper: 'a' },
    ]);
    expect(paused).toEqual([{ step: 4, reason: expect.stringMatching(/stage 1 has no live replica/) as unknown, stages: [1] }]);
    const restore = plane.ofType('swarm-members').at(-1);
    expect(restore).toMatchObject({ stages: [['a'], ['n']], joins: [{ peer: 'n', stage: 1, source: 'a', checkpoint: 4 }], step: 4 });
    expect(plane.ofType('run-state').map((m) => [m.paused, m.step])).toEqual([
      [true, 4],
      [false, 4],
    ]);
    expect(reports.map((x) => x.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(reports.at(-1)?.members).toEqual([['a'], ['n']]);
    // Step 4 re-runs above the attempt it was at when b died.
    expect(
      plane
        .ofType('step-begin')
        .filter((b) => b.step === 4)
        .map((b) => b.attempt),
    ).toEqual([0, 1]);
    c.close();
  });

  it('the lost replica returns with an older checkpoint: the whole run rolls back to it; the re-run steps replace their reports', async () => {
    const plane = new FakePlane();
    const r = run(5, 2);
    const c = new Coordinator(plane, { run: r, minPeers: 2 });
    const sw = new Swarm(plane, r);
    sw.intercept = (msg) => {
      if (msg.type === 'step-begin' && msg.step === 3 && !sw.dead.has('b') && !plane.ofType('run-state').length) {
        sw.kill('b');
        return true;
      }
      return false;
    };
    const resumed: unknown[] = [];
    c.events.on('paused', () => sw.announce('b')); // the same identity back, with its store
    c.events.on('resumed', (e) => resumed.push(e));
    sw.announce('a');
    sw.announce('b');
    const reports = await c.finished();
    const restore = plane.ofType('swarm-members').find((m) => m.restores?.length);
    expect(restore).toMatchObject({
      stages: [['a'], ['b']],
      step: 2,
      joins: [],
      restores: [
        { peer: 'a', stage: 0, step: 2, digest: 'c0-2' },
        { peer: 'b', stage: 1, step: 2, digest: 'c1-2' },
      ],
    });
    expect(resumed).toEqual([{ step: 2, from: 3, stages: [1] }]);
    expect(reports.map((x) => x.step)).toEqual([0, 1, 2, 3, 4]);
    // Step 2 ran twice: its re-run is above its first attempt.
    expect(
      plane
        .ofType('step-begin')
        .filter((b) => b.step === 2)
        .map((b) => b.attempt),
    ).toEqual([0, 1]);
    expect(plane.ofType('run-state').map((m) => [m.paused, m.step])).toEqual([
      [true, 3],
      [false, 2],
    ]);
    c.close();
  });

  it.each(['reports another digest', 'fails'] as const)(
    'a restore that %s is not taken: planned again, the peer joins from a copy instead',
    async (how) => {
      const plane = new FakePlane();
      const r = run(6, 2);
      const c = new Coordinator(plane, { run: r, minPeers: 2 });
      const sw = new Swarm(plane, r);
      sw.intercept = (msg) => {
        if (msg.type === 'step-begin' && msg.step === 4 && !sw.dead.has('b') && !plane.ofType('run-state').length) {
          sw.kill('b');
          return true;
        }
        // b's checkpoint is damaged: it reports something else after loading it.
        if (msg.type === 'swarm-members' && msg.restores?.some((x) => x.peer === 'b')) {
          for (const p of msg.stages.flat())
            if (p === 'b' && how === 'fails') plane.from(p, { type: 'status', state: 'error', detail: 'checkpoint damaged' });
            else plane.from(p, { type: 'swarm-ready', epoch: msg.epoch, ...(p === 'b' ? { digest: 'damaged' } : {}) });
          return true;
        }
        return false;
      };
      c.events.on('paused', () => sw.announce('b'));
      sw.announce('a');
      sw.announce('b');
      const reports = await c.finished();
      const members = plane.ofType('swarm-members');
      // b's own step-4 checkpoint first; then the custodian a's copy of stage 1 at step 4 (custody after step 4).
      expect(members.find((m) => m.restores?.some((x) => x.peer === 'b'))).toMatchObject({ step: 4 });
      expect(members.at(-1)).toMatchObject({ joins: [{ peer: 'b', stage: 1, source: 'a', checkpoint: 4 }], step: 4 });
      expect(reports.map((x) => x.step)).toEqual([0, 1, 2, 3, 4, 5]);
      c.close();
    },
  );

  it('a reloaded peer holding the current checkpoint of its stage restores it instead of a transfer', async () => {
    const plane = new FakePlane();
    const r = run(4, 2);
    const c = new Coordinator(plane, { run: r, minPeers: 3 });
    const sw = new Swarm(plane, r);
    sw.intercept = (msg) => {
      if (msg.type === 'step-apply' && msg.step === 1 && !sw.dead.has('d') && sw.stageOf.get('d') === 1) sw.kill('d');
      return false;
    };
    c.events.on('step', (rep) => {
      if (rep.step === 1) {
        sw.save('d', 1, 2); // what it saved on its way out (pagehide)
        sw.announce('d', 10);
      }
    });
    sw.announce('a', 200);
    sw.announce('b', 100);
    sw.announce('d', 10);
    const reports = await c.finished();
    const back = plane.ofType('swarm-members').find((m) => m.restores?.length);
    expect(back).toMatchObject({ step: 2, joins: [], restores: [{ peer: 'd', stage: 1, step: 2, digest: 'c1-2' }] });
    expect(plane.ofType('run-state')).toEqual([]); // no pause: stage 1 kept b
    expect(reports.at(-1)?.members).toEqual([['a'], ['b', 'd']]);
    c.close();
  });
});
