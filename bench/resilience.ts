// Resilience benchmark (`npm run bench -- resilience`; docs/resilience.md "Figures"): what each failure of issue 10
// costs on a small 2-stage run (tiny model, Node peers on Dawn/lavapipe, the real signaling server, node-datachannel
// WebRTC on loopback), each against the same swarm undisturbed in the same run (its median step time, steps > 0):
//  1. frozen peer: one replica of a 2x2 swarm (`tabswarm peer` processes) SIGSTOPped after step 2: SIGSTOP -> next
//     completed step, and the run's wall time (step 0's report -> the last) against the undisturbed run's;
//  2. signaling server restart: stopped at the first forward of step 2 (in-process 2x2), restarted on its port 2 s
//     later: that step's time;
//  3. coordinator restart: `tabswarm coordinator` (a process, 2x1 peer processes) SIGKILLed once its saved run holds 3
//     steps, started again with `--resume`: restart -> next completed step;
//  4. stage loss: the only replica of stage 1 (a process with its key and --checkpoint-dir) SIGKILLed after step 2
//     and started again at once with the same key and directory: seconds paused, steps rolled back;
//  5. rebalancing: 3+3 in-process peers, stage 1's replicas made 2x slow after step 1 (what `--slow 2` sets): steps
//     until the move, median step time before vs after it.
// Each scenario runs TABSWARM_RES_REPS times (default 3, each time undisturbed then disturbed); medians are reported.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Coordinator, StepReport } from '../src/coordinator/coordinator';
import type { SwarmPeer } from '../src/swarm/peer';
import type { SlowSpec } from '../src/swarm/slow-compute';
import type { StageRuntime } from '../src/swarm/stage-runtime';
import { killAll, peerIdOf, peerProc, tabswarm, until, type Proc } from '../tests/support/procs';
import { median, medianStepMs, tinyTwoStage, within, withCoordinator, withServer } from './resilience-swarm';

const RUN_LIMIT_MS = 240_000;

export interface ResilienceRow {
  scenario: string;
  figure: string;
  /** The figure's median over the reps (null: no rep produced it). */
  value: number | null;
  baseline: string;
  baselineValue: number | null;
  /** value / baseline (null where a ratio means nothing). */
  ratio: number | null;
}

export interface ResilienceBenchResult {
  reps: number;
  rows: ResilienceRow[];
  /** Every rep's raw figures per scenario, and each failure's message. */
  runs: Record<string, unknown[]>;
  failures: string[];
}

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number.parseInt(v, 10);
}

/** The peer's StageRuntime once the coordinator assigned it a stage. */
function whenAssigned(p: SwarmPeer): Promise<StageRuntime> {
  return new Promise((resolve) => {
    const check = () => {
      if (p.runtime) resolve(p.runtime);
      else p.events.once('assigned', check);
    };
    check();
  });
}

/** The run's reports, or an error (after `limitMs`) carrying the tail of every child's log. */
async function finished(c: Coordinator, kids: Proc[], limitMs = RUN_LIMIT_MS - 20_000): Promise<StepReport[]> {
  try {
    return await within(c.finished(), limitMs, 'the run');
  } catch (err) {
    const logs = kids.map(
      (k, i) => `--- child ${i} (${peerIdOf(k) ?? '?'}) ${k.cp.exitCode ?? k.cp.signalCode ?? 'running'}:\n${k.err().slice(-1500)}`,
    );
    throw new Error(`${err instanceof Error ? err.message : String(err)}; coordinator at step ${c.step}\n${logs.join('\n')}`, { cause: err });
  }
}

const exitsOf = async (ps: Proc[]) => Promise.all(ps.map((p) => within(p.exited, 30_000, 'peer exit')));

// 1. Frozen peer.
async function frozen(disturb: boolean, tag: string) {
  const run = tinyTwoStage(`res-frozen-${tag}`, 8);
  return withCoordinator(run, { minPeers: 4, mbDeadlineMinMs: 2000, pingTimeoutMs: 2000 }, async (sw) => {
    const kids = Array.from({ length: 4 }, () => peerProc(sw.server.url, run.runId, sw.sig.coordinatorFingerprint));
    const stageOf = new Map<string, number>();
    sw.coordinator.events.on('assigned', ({ peerId, stage }) => stageOf.set(peerId, stage));
    let t0 = 0;
    let stoppedAt: number | undefined;
    let boundMs: number | undefined;
    let stopped: Proc | undefined;
    let resumed = false;
    sw.coordinator.events.on('step', (r: StepReport) => {
      if (r.step === 0) t0 = performance.now();
      if (!disturb) return;
      if (r.step === 2 && !stopped) {
        stopped = kids.find((k) => stageOf.get(peerIdOf(k) ?? '') === 0);
        if (!stopped) throw new Error('no first-stage child to stop');
        stopped.cp.kill('SIGSTOP');
        stoppedAt = performance.now();
      } else if (stoppedAt !== undefined && boundMs === undefined) {
        boundMs = performance.now() - stoppedAt;
      } else if (stopped && !resumed) {
        resumed = true;
        stopped.cp.kill('SIGCONT');
      }
    });
    const reports = await finished(sw.coordinator, kids);
    const wallS = (performance.now() - t0) / 1000;
    const exits = await exitsOf(kids);
    return {
      medianStepMs: medianStepMs(reports),
      wallS,
      boundS: boundMs === undefined ? null : boundMs / 1000,
      attempts: reports.map((r) => r.attempts),
      exits: exits.map((e) => e.code),
    };
  });
}

// 2. Signaling server restart, 2 s outage mid-step.
async function signaling(disturb: boolean, tag: string) {
  const run = tinyTwoStage(`res-signal-${tag}`, 6);
  return withCoordinator(run, { minPeers: 4 }, async (sw) => {
    for (let i = 0; i < 4; i++) await sw.addPeer();
    let restarted: Promise<void> | undefined;
    if (disturb) {
      const victim = sw.peers[0];
      const rt = await whenAssigned(victim);
      const off = rt.events.on('forward', (ev) => {
        if (ev.step !== 2 || restarted) return;
        off();
        restarted = sw
          .stopServer()
          .then(() => new Promise((r) => setTimeout(r, 2000)))
          .then(() => sw.startServer());
      });
    }
    const reports = await finished(sw.coordinator, []);
    await restarted;
    return {
      medianStepMs: medianStepMs(reports),
      outageStepMs: disturb ? reports[2].ms : null,
      outageOthersMedianMs: median(reports.filter((r) => r.step > 0 && r.step !== 2).map((r) => r.ms)),
      attempts: reports.map((r) => r.attempts),
    };
  });
}

// 3. Coordinator SIGKILL + --resume (every piece a process but the signaling server).
const TINY_CLI = ['--n-layer', '4', '--n-head', '2', '--n-embd', '32', '--block-size', '16', '--batch-size', '2', '--microbatches', '4'];
const savedRun = (path: string): { step: number; reports: { step: number; ms: number | null }[] } | null => {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { step: number; reports: { step: number; ms: number | null }[] };
  } catch {
    return null;
  }
};

async function coordinatorResume(disturb: boolean, tag: string, dir: string) {
  return withServer(async (server) => {
    const sw = { server };
    const room = `res-coord-${tag}`;
    const state = join(dir, `${tag}.json`);
    const args = ['coordinator', '--signal', sw.server.url, '--room', room, '--key', join(dir, `${tag}.key`), '--state', state, '--verbose'];
    const runFlags = ['--stages', '2', '--steps', '8', '--lr', '3e-3', '--warmup', '1', '--sample-chars', '0', '--eval-batches', '0', ...TINY_CLI];
    const start = async (extra: string[]) => {
      const p = tabswarm([...args, ...extra]);
      const fp = await until(p, () => /coordinator key fingerprint ([0-9a-f]{64})/.exec(p.err())?.[1], 'coordinator fingerprint');
      return { p, fp };
    };
    const first = await start(runFlags);
    const peers = [0, 1].map(() => peerProc(sw.server.url, room, first.fp, ['--key', 'ephemeral', '--coordinator-wait', '120']));
    let restartS: number | null = null;
    let last = first.p;
    const procs = [first.p, ...peers];
    try {
      if (disturb) {
        await until(first.p, () => ((savedRun(state)?.step ?? 0) >= 3 ? true : null), 'saved run at step 3');
        first.p.cp.kill('SIGKILL');
        await first.p.exited;
        const saved = savedRun(state)?.step ?? -1;
        for (const p of peers) await until(p, () => (/the coordinator left: waiting for it/.test(p.err()) ? true : null), 'peer waiting');
        const t0 = performance.now();
        const second = await start(['--resume']);
        procs.push(second.p);
        const next = until(second.p, () => ((savedRun(state)?.step ?? 0) > saved ? true : null), 'first step after the restart');
        await within(next, 120_000, `the first step after the restart (saved step ${saved})`);
        restartS = (performance.now() - t0) / 1000;
        last = second.p;
      }
      const end = await within(last.exited, RUN_LIMIT_MS, 'coordinator exit');
      if (end.code !== 0) throw new Error(`coordinator exited ${end.code ?? end.signal}: ${last.err().slice(-1500)}`);
      const exits = await exitsOf(peers);
      const reports = (savedRun(state)?.reports ?? []).map((r) => ({ step: r.step, ms: r.ms ?? Number.NaN }));
      return { medianStepMs: medianStepMs(reports), restartS, steps: reports.length, exits: exits.map((e) => e.code) };
    } catch (err) {
      const logs = procs.map((k, i) => `--- process ${i} ${k.cp.exitCode ?? k.cp.signalCode ?? 'running'}:\n${k.err().slice(-2000)}`);
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs.join('\n')}`, { cause: err });
    }
  });
}

// 4. Stage loss: stage 1's only replica SIGKILLed, restarted with its key and checkpoint directory.
async function stageLoss(disturb: boolean, tag: string, dir: string) {
  const run = tinyTwoStage(`res-loss-${tag}`, 8, { checkpoint: { every: 2, keep: 3 } });
  return withCoordinator(run, { minPeers: 2 }, async (sw) => {
    const argsOf = (i: number) => ['--key', join(dir, `${tag}-p${i}.key`), '--checkpoint-dir', join(dir, `${tag}-p${i}`)];
    const kids = [0, 1].map((i) => peerProc(sw.server.url, run.runId, sw.sig.coordinatorFingerprint, argsOf(i)));
    const stageOf = new Map<string, number>();
    sw.coordinator.events.on('assigned', ({ peerId, stage }) => stageOf.set(peerId, stage));
    let killedAt: number | undefined;
    let killToStepMs: number | undefined;
    let pausedAt: number | undefined;
    let pausedMs: number | undefined;
    let rolledBack: number | undefined;
    sw.coordinator.events.on('paused', () => (pausedAt ??= performance.now()));
    sw.coordinator.events.on('resumed', (e) => {
      if (pausedAt !== undefined && pausedMs === undefined) pausedMs = performance.now() - pausedAt;
      rolledBack ??= e.from - e.step;
    });
    sw.coordinator.events.on('step', (r: StepReport) => {
      if (!disturb) return;
      if (r.step === 2 && killedAt === undefined) {
        const i = kids.findIndex((k) => stageOf.get(peerIdOf(k) ?? '') === 1);
        if (i < 0) throw new Error('no stage-1 child to kill');
        killedAt = performance.now();
        kids[i].cp.kill('SIGKILL');
        void kids[i].exited.then(() => kids.push(peerProc(sw.server.url, run.runId, sw.sig.coordinatorFingerprint, argsOf(i))));
      } else if (killedAt !== undefined && killToStepMs === undefined) {
        killToStepMs = performance.now() - killedAt;
      }
    });
    // Undisturbed it takes ~30 s; a restore that never completes fails it after 100 s instead of the general limit.
    const reports = await finished(sw.coordinator, kids, 100_000);
    const exits = await exitsOf(kids);
    return {
      medianStepMs: medianStepMs(reports),
      pausedS: pausedMs === undefined ? null : pausedMs / 1000,
      rolledBack: rolledBack ?? null,
      killToStepS: killToStepMs === undefined ? null : killToStepMs / 1000,
      exits: exits.map((e) => e.code ?? e.signal),
    };
  });
}

// 5. Live rebalancing: 3+3, stage 1 made 2x slow after step 1.
async function rebalance(disturb: boolean, tag: string) {
  const run = tinyTwoStage(`res-rebal-${tag}`, 16, { M: 8 });
  return withCoordinator(run, { minPeers: 6 }, async (sw) => {
    const slow = new Map<string, SlowSpec>();
    for (let i = 0; i < 6; i++) {
      const spec: SlowSpec = { factor: 1 };
      const p = await sw.addPeer({ slow: spec });
      slow.set(p.peerId, spec);
    }
    let movedAt = -1;
    sw.coordinator.events.on('moved', () => {
      if (movedAt < 0) movedAt = sw.coordinator.step;
    });
    sw.coordinator.events.on('step', (r: StepReport) => {
      if (!disturb || r.step !== 1) return;
      for (const [id, spec] of slow) if (r.members[1].includes(id)) spec.factor = 2;
    });
    const reports = await finished(sw.coordinator, []);
    const before = reports.filter((r) => r.step > 1 && r.step <= movedAt).map((r) => r.ms);
    // The step the moved peer first trains in compiles its new stage's pipelines: not a sample.
    const after = reports.filter((r) => movedAt >= 0 && r.step > movedAt + 1).map((r) => r.ms);
    return {
      medianStepMs: medianStepMs(reports),
      stepsToMove: movedAt < 0 ? null : movedAt - 1,
      beforeMs: median(before),
      afterMs: median(after),
      layout: reports.map((r) => r.members.map((m) => m.length).join('+')),
    };
  });
}

type Figures = Record<string, unknown> & { medianStepMs: number };
type Scenario = (disturb: boolean, tag: string, dir: string) => Promise<Figures>;

export async function benchResilience(): Promise<ResilienceBenchResult> {
  const reps = envInt('TABSWARM_RES_REPS', 3);
  const only = (process.env.TABSWARM_RES_ONLY ?? '').split(',').filter(Boolean);
  const dir = mkdtempSync(join(tmpdir(), 'tabswarm-resilience-'));
  const scenarios: [string, Scenario][] = [
    ['frozen', frozen],
    ['signaling', signaling],
    ['coordinator', coordinatorResume],
    ['stage-loss', stageLoss],
    ['rebalance', rebalance],
  ];
  const runs: Record<string, { base?: Figures; hit?: Figures; error?: string }[]> = {};
  const failures: string[] = [];
  try {
    for (const [name, fn] of scenarios) {
      if (only.length > 0 && !only.includes(name)) continue;
      runs[name] = [];
      for (let rep = 0; rep < reps; rep++) {
        const row: { base?: Figures; hit?: Figures; error?: string } = {};
        try {
          row.base = await within(fn(false, `${rep}-base`, dir), RUN_LIMIT_MS, `${name} undisturbed`);
          await killAll();
          row.hit = await within(fn(true, `${rep}-hit`, dir), RUN_LIMIT_MS, `${name} disturbed`);
        } catch (err) {
          row.error = err instanceof Error ? err.message : String(err);
          failures.push(`${name} rep ${rep}: ${row.error}`);
        } finally {
          await killAll();
        }
        console.log(`resilience ${name} rep ${rep}: ${JSON.stringify(row)}`);
        runs[name].push(row);
      }
    }
  } finally {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  }

  const med = (name: string, side: 'base' | 'hit', key: string): number | null => {
    const xs = (runs[name] ?? []).map((r) => r[side]?.[key]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    return xs.length ? median(xs) : null;
  };
  const rows: ResilienceRow[] = [];
  const add = (scenario: string, figure: string, value: number | null, baseline: string, baselineValue: number | null, ratio = true) =>
    rows.push({ scenario, figure, value, baseline, baselineValue, ratio: ratio && value !== null && baselineValue ? value / baselineValue : null });
  const stepS = (name: string) => {
    const ms = med(name, 'base', 'medianStepMs');
    return ms === null ? null : ms / 1000;
  };
  if (runs.frozen) {
    add('1 frozen peer (SIGSTOP, 2x2)', 'SIGSTOP -> next step s', med('frozen', 'hit', 'boundS'), 'median step s', stepS('frozen'));
    // Extra wall time per rep (disturbed - undisturbed), then the median; the ratio is wall over wall.
    const extra = runs.frozen.flatMap((r) => (r.hit && r.base ? [Number(r.hit.wallS) - Number(r.base.wallS)] : []));
    const baseWall = med('frozen', 'base', 'wallS');
    const hitWall = med('frozen', 'hit', 'wallS');
    rows.push({
      scenario: '1 frozen peer (SIGSTOP, 2x2)',
      figure: 'extra wall s (steps 1-7)',
      value: extra.length ? median(extra) : null,
      baseline: 'undisturbed wall s',
      baselineValue: baseWall,
      ratio: hitWall !== null && baseWall ? hitWall / baseWall : null,
    });
  }
  if (runs.signaling) {
    const hit = med('signaling', 'hit', 'outageStepMs');
    add('2 signaling restart (2 s)', 'outage step s', hit === null ? null : hit / 1000, 'median step s', stepS('signaling'));
  }
  if (runs.coordinator)
    add('3 coordinator SIGKILL + --resume', 'restart -> next step s', med('coordinator', 'hit', 'restartS'), 'median step s', stepS('coordinator'));
  if (runs['stage-loss']) {
    add('4 stage loss (SIGKILL + restart)', 'paused s', med('stage-loss', 'hit', 'pausedS'), 'median step s', stepS('stage-loss'));
    add('4 stage loss (SIGKILL + restart)', 'SIGKILL -> next step s', med('stage-loss', 'hit', 'killToStepS'), 'median step s', stepS('stage-loss'));
    add('4 stage loss (SIGKILL + restart)', 'steps rolled back', med('stage-loss', 'hit', 'rolledBack'), '-', null, false);
  }
  if (runs.rebalance) {
    add('5 rebalance (stage 1 2x slow, 3+3)', 'steps until the move', med('rebalance', 'hit', 'stepsToMove'), '-', null, false);
    // A move in an undisturbed run is a false move (measurement noise): counted, not hidden.
    const falseMoves = runs.rebalance.filter((r) => typeof r.base?.stepsToMove === 'number').length;
    add('5 rebalance (stage 1 2x slow, 3+3)', 'undisturbed runs that moved', falseMoves, `of ${runs.rebalance.length}`, null, false);
    const after = med('rebalance', 'hit', 'afterMs');
    const before = med('rebalance', 'hit', 'beforeMs');
    add(
      '5 rebalance (stage 1 2x slow, 3+3)',
      'median step s after move',
      after === null ? null : after / 1000,
      'before move s',
      before === null ? null : before / 1000,
    );
    add(
      '5 rebalance (stage 1 2x slow, 3+3)',
      'median step s before move',
      before === null ? null : before / 1000,
      'undisturbed step s',
      stepS('rebalance'),
    );
  }
  const fmt = (x: number | null, d = 2) => (x === null ? 'n/a' : x.toFixed(d));
  console.log(`\nResilience: tiny 2-stage run, Node peers on this adapter, medians of ${reps} rep(s); baseline = the same swarm undisturbed`);
  console.table(
    rows.map((r) => ({
      scenario: r.scenario,
      figure: r.figure,
      value: fmt(r.value),
      baseline: `${fmt(r.baselineValue)} (${r.baseline})`,
      ratio: fmt(r.ratio),
    })),
  );
  if (failures.length > 0) console.log(`failures:\n  ${failures.join('\n  ')}`);
  return { reps, rows, runs, failures };
}
