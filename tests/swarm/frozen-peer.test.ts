// A frozen peer (docs/resilience.md, "Stragglers and frozen peers"): real `tabswarm peer` processes, S=2 x R=2, with
// the signaling server and the coordinator in this process. After step FREEZE_AFTER one first-stage replica is
// SIGSTOPped: its process is stopped, its WebSocket and data channels stay open (nothing tells anyone it is gone
// but silence). The coordinator's microbatch deadline passes, its ping goes unanswered, it is frozen and the step
// re-runs on its twin. A step later it is SIGCONTed: its first message brings it back as a joiner, it copies its
// stage's state from its twin and trains again. All steps finish, each counted once: the losses are the
// single-peer engine's. Every process exits 0. The time from SIGSTOP to the next completed step is printed (the
// bound: deadline + ping timeout + one re-run of the step); it is not asserted (no timing assertions).
import { afterEach, describe, expect, it } from 'vitest';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server';
import { Coordinator, type StepReport } from '../../src/coordinator/coordinator';
import { nodeWebSocket } from '../../src/net/rtc-node';
import { connectSwarm, type SwarmSignaling } from '../../src/protocol/control-codec';
import { testIdentity } from '../support/identity';
import { killAll, peerIdOf, peerProc, type Proc } from '../support/procs';
import { LOG, reference, tinyRun } from './harness';

const STEPS = 9;
const FREEZE_AFTER = 2; // the SIGSTOP goes out when step FREEZE_AFTER's report is in (step FREEZE_AFTER + 1 begins)

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function spawnPeer(url: string, room: string, coordinator: string): Proc {
  const p = peerProc(url, room, coordinator, ['--key', 'ephemeral', ...(LOG ? ['--verbose'] : [])]);
  if (LOG) p.cp.stderr?.on('data', (d: Buffer) => LOG?.(d.toString().trimEnd()));
  return p;
}

describe('a frozen peer (SIGSTOP)', () => {
  it('its microbatches move to its twin, it rejoins after SIGCONT; all steps once, the single-peer losses, exit 0 everywhere', async () => {
    const run = tinyRun(
      'frozen',
      4,
      [
        [0, 2],
        [2, 4],
      ],
      { steps: STEPS, schedule: { lr: 3e-3, minLr: 3e-4, warmup: 1, decaySteps: STEPS } },
    );
    const server: SignalingServer = await startSignalingServer({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => server.close());
    const room = 'frozen-peer';
    const sig: SwarmSignaling = await connectSwarm(server.url, {
      room,
      role: 'coordinator',
      identity: await testIdentity(`coordinator/${room}`),
      WebSocket: nodeWebSocket,
      log: LOG,
    });
    cleanups.push(() => sig.close());
    const coordinator = new Coordinator(sig, {
      run,
      minPeers: 4,
      log: LOG,
      stepTimeoutMs: 60_000,
      readyTimeoutMs: 60_000,
      mbDeadlineMinMs: 2000,
      pingTimeoutMs: 2000,
    });
    cleanups.push(() => coordinator.close());
    const kids = Array.from({ length: 4 }, () => spawnPeer(server.url, room, sig.coordinatorFingerprint));
    cleanups.push(() => killAll());

    const stageOf = new Map<string, number>();
    coordinator.events.on('assigned', ({ peerId, stage }) => stageOf.set(peerId, stage));
    const frozen: { peerId: string; reason: string; step: number }[] = [];
    coordinator.events.on('frozen', (e) => frozen.push(e));
    const restarts: { step: number; attempt: number; reason: string }[] = [];
    coordinator.events.on('restart', (r) => restarts.push(r));
    const memberships: { epoch: number; joins: string[] }[] = [];
    coordinator.events.on('membership', (m) => memberships.push(m));

    let stopped: { child: Proc; id: string; at: number } | undefined;
    let boundMs: number | undefined;
    let continuedAt: number | undefined;
    coordinator.events.on('step', (r: StepReport) => {
      if (r.step === FREEZE_AFTER && !stopped) {
        // A first-stage replica: it owns microbatches of the next step.
        const child = kids.find((k) => {
          const id = peerIdOf(k);
          return id !== undefined && stageOf.get(id) === 0;
        });
        const id = child && peerIdOf(child);
        if (!child?.cp.pid || !id) throw new Error('no first-stage child to stop');
        child.cp.kill('SIGSTOP');
        stopped = { child, id, at: performance.now() };
        return;
      }
      if (stopped && boundMs === undefined) {
        boundMs = performance.now() - stopped.at;
        return;
      }
      if (stopped && continuedAt === undefined) {
        continuedAt = r.step;
        stopped.child.cp.kill('SIGCONT');
      }
    });

    let reports: StepReport[];
    try {
      reports = await coordinator.finished();
    } catch (err) {
      for (const k of kids) console.log(`peer ${peerIdOf(k) ?? '?'} stderr:\n${k.err()}`);
      throw err;
    }
    const exits = await Promise.all(kids.map((k) => k.exited));
    const s = stopped;
    if (!s) throw new Error('no peer was stopped');
    const back = memberships.find((m) => m.joins.includes(s.id));
    console.log(
      `frozen peer: ${s.id} SIGSTOPped after step ${FREEZE_AFTER}; next step done ${boundMs?.toFixed(0)} ms later; ` +
        `SIGCONT after step ${continuedAt}; frozen ${JSON.stringify(frozen)}; restarts ${JSON.stringify(restarts)}; ` +
        `rejoined at membership ${back?.epoch ?? 'never'}; steps ${reports.map((r) => `${r.step}:${r.attempts}x ${r.ms.toFixed(0)}ms [${r.members.map((m) => m.length).join('|')}]`).join(' ')}; ` +
        `exits ${JSON.stringify(exits)}`,
    );
    if (exits.some((e) => e.code !== 0)) for (const k of kids) console.log(`peer ${peerIdOf(k) ?? '?'} stderr:\n${k.err()}`);

    expect(reports.map((r) => r.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i));
    // Dropped as frozen (not as vanished: its WebSocket stayed open), during the step after the SIGSTOP.
    expect(frozen.map((f) => f.peerId)).toContain(s.id);
    expect(reports[FREEZE_AFTER + 1].attempts).toBeGreaterThanOrEqual(2);
    expect(reports[FREEZE_AFTER + 1].members[0]).not.toContain(s.id);
    // After SIGCONT it is heard from, rejoins its stage with a copy of the state, and trains the last step.
    expect(back).toBeDefined();
    expect(reports[STEPS - 1].members[0]).toContain(s.id);
    for (const r of reports) expect(r.replicasAgree).toBe(true);
    expect(exits).toEqual(kids.map(() => ({ code: 0, signal: null })));

    // Nothing lost or counted twice: the single-peer engine's losses, step by step.
    const ref = await reference(run);
    cleanups.push(() => ref.rt.destroy());
    console.log(`losses swarm ${reports.map((r) => r.loss.toFixed(5)).join(' ')} ref ${ref.losses.map((l) => l.toFixed(5)).join(' ')}`);
    for (let i = 0; i < STEPS; i++) expect(Math.abs(reports[i].loss - ref.losses[i])).toBeLessThan(1e-5 * Math.max(1, ref.losses[i]));
  }, 240_000);
});
