// `tabswarm demo` (`npm run demo`): the whole swarm on this machine, on loopback only.
//   1-2. `tabswarm serve` on 127.0.0.1 (src/cli/serve.ts; ephemeral port unless --port): the built pages (vite build
//      -> .cache/serve-dist), the signaling server on /signal and the run's dataset on /api/data, one port; with the
//      URL a person can open in another browser on this machine to join the run,
//   3. a coordinator (in this process) for a tinyshakespeare run,
//   4. N contributors: headless Chromium tabs on the contributor page (default), or Node peers (--node-peers:
//      child processes running `tabswarm peer`; --in-process: SwarmPeers inside this process); a Node peer's death
//      is churn, not failure (the coordinator re-runs the step without it; the run fails only as the coordinator
//      decides: a stage without a live replica; or when every peer is gone),
//   5. a live table; then the trained weights come to this process over WebRTC (an observer peer copies one
//      replica per stage through the swarm's state transfer) and Sampler prints a text sample,
//   6. a clean exit (browser, peers, servers closed); the last stdout line is the JSON summary
//      {"steps","peers","stages","first_loss","last_loss","tokens_per_s","val_loss","wire_bytes_per_token","ledger"}
//      (val_loss: the collected weights on the validation split; wire_bytes_per_token: bytes per trained token by
//      category, docs/compression.md; ledger: contributor id -> credits, FLOPs of verified work, docs/trust.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StepReport } from '../coordinator/coordinator';
import { DEFAULT_ROOM } from '../coordinator/run-builder';
import { CoordinatorRun } from '../coordinator/run-lifecycle';
import { sampleText } from '../coordinator/sample-text';
import { EVAL_BATCHES, validationLoss } from '../coordinator/val-loss';
import { runBottleneck } from '../coordinator/run-model';
import { fp32Ratios } from '../coordinator/run-view';
import type { RunConfig } from '../protocol/run-config';
import { nodeRuntime } from '../gpu/node-runtime';
import { isDawnLimitWarning } from '../gpu/native-stderr';
import { withElapsed } from './progress';
import { nodeRtcFactory, nodeWebSocket } from '../net/rtc-node';
import { SwarmPeer } from '../swarm/peer';
import { num, parse, str, UsageError } from './args';
import { cliRuntime, repoRoot } from './engine';
import { ensurePages } from './pages';
import { startServe, type ServeHandle } from './serve';
import { LiveTable } from './live-table';
import { runFlagOptions, runFlagsHelp, runFromFlags } from './run-flags';
import { corpus, dataFromFlags, exitSoon, type DataChoice } from './swarm-common';
import { writeLedgerFile } from './ledger-file';
import { EPHEMERAL_KEY, identityFromFlag } from './key-file';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium';
import { adversaryHelp, adversaryKeyFiles, adversaryPlan, attacks, type AdversaryPlan } from './demo-adversaries';
import { formatAttack } from '../swarm/adversary';

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const demoSummary = 'a whole swarm on loopback: signaling server, pages, coordinator and contributors (tabs or Node peers)';

export const demoHelp = `tabswarm demo [flags]             a whole swarm on loopback: signaling server, pages, coordinator, contributors
  --tabs 4            headless Chromium tabs on the contributor page (2 stages x 2 replicas)
  --node-peers        Node peers (child processes running \`tabswarm peer\`) instead of tabs; the log names each one's
                      pid and stage. A peer process that dies is churn: the run goes on while every stage keeps a
                      live replica (it fails with the coordinator's error when one has none, or when no peer is left)
  --in-process        with --node-peers: the peers run inside this process
  --peers N           number of contributors (same as --tabs)
${runFlagsHelp}
  --port 0            the one port (127.0.0.1) for the pages, signaling (/signal) and the dataset (/api/data)
  --no-pages          do not build/serve the pages (only with --node-peers)
  --room ${DEFAULT_ROOM}         --sample-chars 200   --timeout 1200 (seconds, whole run)   --verbose (swarm logs on stderr)
  --eval-batches ${EVAL_BATCHES}    validation batches for the summary's val_loss (0: no evaluation)
${adversaryHelp}
  --ledger FILE       write the signed contribution ledger after every step (\`tabswarm ledger verify\`)
  --restore-wait 600  seconds a paused run waits for a checkpoint of a stage that lost every replica, then fails
  --mb-deadline-min 2 --ping-timeout 2   seconds: a step's microbatch deadline floor, and how long a pinged
                      peer may stay silent before it is frozen (its microbatches move to its twin; docs/resilience.md)
  --key FILE          the coordinator's key (default: ephemeral; the peers always get fresh keys)`;

/** True once the contributor page understands ?signal=&room= (the swarm tab mode). */
export function tabModeAvailable(): boolean {
  try {
    const page = readFileSync(join(repoRoot, 'src', 'ui', 'contributor-page.ts'), 'utf8');
    return /signal/.test(page) && existsSync(join(repoRoot, 'src', 'worker', 'stage-worker.ts'));
  } catch {
    return false;
  }
}

interface Contributors {
  /** Waits for the contributors to leave (after the shutdown), ending stragglers. */
  stop(): Promise<void>;
  /** The ids of the contributors that attack (--adversaries). */
  adversaries: string[];
}

function lineTap(stream: NodeJS.ReadableStream, prefix: string, sink: (s: string) => void, keep: string[]): void {
  let buf = '';
  stream.setEncoding?.('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (isDawnLimitWarning(line)) continue; // a child's stderr is a socket: Dawn's noise is dropped here (src/gpu/native-stderr.ts)
      keep.push(`${prefix}${line}`);
      if (keep.length > 40) keep.shift();
      sink(`${prefix}${line}`);
    }
  });
}

/** `tabswarm peer`'s stderr line on its assignment (src/cli/peer.ts): `[peer ID] stage S [...`. */
const STAGE_LINE = /^\[peer ([0-9a-f]+)\] stage (\d+) /;

async function startNodeChildren(
  n: number,
  url: string,
  room: string,
  coordinator: string,
  data: DataChoice,
  log: (s: string) => void,
  verbose: boolean,
  onExit: (id: string, how: string, assigned: boolean, tail: string[]) => void,
  plan: AdversaryPlan = { count: 0, attack: null },
): Promise<Contributors> {
  const kids: { id: string; cp: ChildProcess; exited: Promise<number | null> }[] = [];
  const bin = join(repoRoot, 'bin', 'tabswarm.mjs');
  const bad = await adversaryKeyFiles(plan.count);
  // Each child's own checkpoint directory (docs/resilience.md), all under one temporary directory removed at the end.
  const ckRoot = await mkdtemp(join(tmpdir(), 'tabswarm-demo-checkpoints-'));
  let k = 0;
  for (let i = 0; i < n; i++) {
    // An attacker: its own key file (so its id is known here) and --attack; the later --key wins.
    const attack = plan.attack && attacks(plan, i, n) ? ['--key', bad.paths[k++], '--attack', formatAttack(plan.attack)] : [];
    const id = `node-${i + 1}`;
    // One fresh key per child: peers on one machine must not share the default key file (same key, same id).
    const args = [
      bin,
      'peer',
      '--signal',
      url,
      '--room',
      room,
      '--coordinator',
      coordinator,
      '--key',
      EPHEMERAL_KEY,
      '--checkpoint-dir',
      join(ckRoot, id),
      ...(data.path !== undefined ? ['--data', data.path, '--tokenizer', data.tokenizer, ...(data.vocab ? ['--vocab', data.vocab] : [])] : []),
      ...(verbose ? ['--verbose'] : []),
      ...attack,
    ];
    const cp = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TABSWARM_QUIET: '1' } });
    const tail: string[] = [];
    let assigned = false;
    lineTap(cp.stdout!, `[${id}] `, verbose ? log : () => undefined, tail);
    // Each child's stage, with its pid, always in the log: who holds what when one dies (and the demo test's way to
    // SIGKILL one replica of each stage, as a person would with kill(1)).
    lineTap(
      cp.stderr!,
      '',
      (line) => {
        const m = STAGE_LINE.exec(line);
        if (m) log(`${id} (pid ${cp.pid}) is peer ${m[1]}, stage ${m[2]}`);
        assigned ||= m !== null;
        if (verbose) log(line);
      },
      tail,
    );
    const exited = new Promise<number | null>((resolve) =>
      cp.once('exit', (code, signal) => {
        onExit(id, signal ? `signal ${signal}` : `code ${code}`, assigned, tail);
        resolve(code);
      }),
    );
    kids.push({ id, cp, exited });
  }
  log(`started ${n} Node peer process(es): ${kids.map((k) => `${k.id} (pid ${k.cp.pid})`).join(', ')}`);
  if (plan.attack) log(`${plan.count} of them attack (${formatAttack(plan.attack)}): ${bad.ids.join(', ')}`);
  return {
    adversaries: bad.ids,
    async stop() {
      // They leave by themselves on the coordinator's shutdown; stragglers get SIGTERM, then SIGKILL.
      const wait = (ms: number) => Promise.race([Promise.all(kids.map((k) => k.exited)), new Promise((r) => setTimeout(r, ms))]);
      await wait(15_000);
      for (const k of kids) if (k.cp.exitCode === null && k.cp.signalCode === null) k.cp.kill('SIGTERM');
      await wait(5_000);
      for (const k of kids) if (k.cp.exitCode === null && k.cp.signalCode === null) k.cp.kill('SIGKILL');
      await Promise.all(kids.map((k) => k.exited));
      bad.cleanup();
      await rm(ckRoot, { recursive: true, force: true });
    },
  };
}

async function startInProcess(
  n: number,
  url: string,
  room: string,
  coordinator: string,
  dataPath: DataChoice,
  log?: (s: string) => void,
  plan: AdversaryPlan = { count: 0, attack: null },
): Promise<Contributors> {
  const { data } = await corpus(dataPath);
  const peers: SwarmPeer[] = [];
  const adversaries: string[] = [];
  for (let i = 0; i < n; i++) {
    const attack = plan.attack && attacks(plan, i, n) ? plan.attack : undefined;
    const p = await SwarmPeer.join({
      url,
      room,
      coordinator, // each with a fresh ephemeral key
      WebSocket: nodeWebSocket,
      rtcFactory: nodeRtcFactory(),
      runtime: () => nodeRuntime({ quiet: true }),
      tokens: () => data.train,
      platform: 'node',
      log,
      ...(attack ? { attack } : {}),
    });
    void p.finished().then(() => p.close());
    peers.push(p);
    if (attack) adversaries.push(p.peerId);
  }
  return {
    adversaries,
    async stop() {
      for (const p of peers) p.close();
      await new Promise((r) => setTimeout(r, 200));
    },
  };
}

async function startTabs(n: number, pageUrl: string, log: (s: string) => void, verbose: boolean): Promise<Contributors> {
  const { chromium } = await import('playwright-core');
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`no Chromium at ${CHROMIUM_PATH}: run \`bash scripts/setup.sh\` (or set CHROMIUM_PATH)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  const context = await browser.newContext({ permissions: ['microphone'] });
  for (let i = 0; i < n; i++) {
    const page = await context.newPage();
    const tag = `[tab-${i + 1}] `;
    page.on('console', (m) => (verbose || m.type() === 'error') && log(`${tag}${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log(`${tag}page error: ${e.message}`));
    await page.goto(pageUrl); // each tab takes its own key slot (src/ui/key-store.ts)
  }
  log(`opened ${n} headless Chromium tab(s)`);
  return {
    adversaries: [],
    async stop() {
      await new Promise((r) => setTimeout(r, 500)); // let the tabs see the shutdown
      await context.close().catch(() => undefined);
      await browser.close().catch(() => undefined);
    },
  };
}

export async function demo(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    ...runFlagOptions,
    tabs: { type: 'string' },
    peers: { type: 'string' },
    'node-peers': { type: 'boolean' },
    'in-process': { type: 'boolean' },
    port: { type: 'string' },
    'no-pages': { type: 'boolean' },
    room: { type: 'string' },
    'sample-chars': { type: 'string' },
    'eval-batches': { type: 'string' },
    timeout: { type: 'string' },
    verbose: { type: 'boolean' },
    ledger: { type: 'string' },
    'restore-wait': { type: 'string' },
    'mb-deadline-min': { type: 'string' },
    'ping-timeout': { type: 'string' },
    adversaries: { type: 'string' },
    attack: { type: 'string' },
    key: { type: 'string' },
  });
  const t0 = performance.now();
  const nodePeers = values['node-peers'] === true || values['in-process'] === true;
  const n = num(values, 'peers', num(values, 'tabs', 4, { int: true, min: 1 }), { int: true, min: 1 });
  if (values['no-pages'] && !nodePeers) throw new UsageError('--no-pages needs --node-peers (the tabs load the pages)');
  if (!nodePeers && !tabModeAvailable()) {
    throw new UsageError('the contributor page has no swarm tab mode yet (?signal=&room=): use --node-peers');
  }
  const room = str(values, 'room') ?? DEFAULT_ROOM;
  const sampleChars = num(values, 'sample-chars', 200, { int: true, min: 0 });
  const evalCount = num(values, 'eval-batches', EVAL_BATCHES, { int: true, min: 0 });
  const timeoutMs = num(values, 'timeout', 1200, { min: 1 }) * 1000;
  const verbose = values.verbose === true;
  const ledgerPath = str(values, 'ledger');
  const say = (s: string) => process.stderr.write(`[demo] ${s}\n`);
  const swarmLog = verbose ? (s: string) => process.stderr.write(`${s}\n`) : undefined;
  const dataChoice = dataFromFlags(values);
  const { tokenizer, data, spec } = await corpus(dataChoice);
  // The tabs fetch the splits where the demo's server serves them (docs/deployment.md: /api/data/<trainSha256>/).
  const runData = spec ? { ...spec, url: `/api/data/${spec.trainSha256}/` } : undefined;
  const run: RunConfig = runFromFlags(values, { vocab: tokenizer.vocabSize, data: runData });
  if (n < run.stages.length) throw new UsageError(`${n} contributor(s) cannot fill ${run.stages.length} stages`);
  const plan = adversaryPlan(values, n, nodePeers);

  const cleanups: (() => Promise<void> | void)[] = [];
  let contributors: Contributors | undefined;
  let session: CoordinatorRun | undefined;
  let sig: ServeHandle | undefined;
  let failure: Error | null = null;
  let table: LiveTable | undefined;
  try {
    // The demo's coordinator key: ephemeral unless --key names a file (then created once, mode 0600).
    const identity = await identityFromFlag(str(values, 'key'), null, say);
    const coordinator = identity.fingerprint;
    const pages = values['no-pages'] ? false : await withElapsed('building the pages (vite)', say, (log) => ensurePages(log));
    sig = await startServe({
      host: '127.0.0.1',
      port: num(values, 'port', 0, { int: true, min: 0 }),
      pages,
      room,
      data: spec ? { prepared: { spec, train: data.train, val: data.val, tokenizer } } : undefined,
      log: verbose ? say : undefined,
    });
    const server = sig;
    cleanups.push(() => server.close());
    say(`tabswarm serve ${sig.url} (signaling ${sig.signalUrl})`);
    let joinUrl: string | undefined;
    if (pages) joinUrl = `${sig.url}/?signal=${encodeURIComponent(sig.signalUrl)}&room=${encodeURIComponent(room)}&coordinator=${coordinator}`;
    session = await CoordinatorRun.start({
      url: sig.signalUrl,
      room,
      run,
      minPeers: n,
      log: swarmLog,
      WebSocket: nodeWebSocket,
      identity,
      holdShutdown: true,
      onLedger: ledgerPath ? (text) => writeLedgerFile(ledgerPath, text) : undefined,
      restoreWaitMs: num(values, 'restore-wait', 600, { min: 0 }) * 1000,
      mbDeadlineMinMs: num(values, 'mb-deadline-min', 2, { min: 0 }) * 1000,
      pingTimeoutMs: num(values, 'ping-timeout', 2, { min: 0.01 }) * 1000,
    });
    const s = session;
    const evicted: string[] = [];
    s.coordinator.events.on('evicted', (e) => evicted.push(e.peerId));
    cleanups.push(() => s.close());
    const P = run.stages.length;
    say(
      `run ${run.runId}: GPT ${run.model.n_layer} layers x ${run.model.n_embd} (${P} stage(s)), ${run.steps} steps of ` +
        `${run.M} microbatches x ${run.B} x ${run.T} tokens; ${n} ${nodePeers ? 'Node peer' : 'tab'}(s)`,
    );
    if (joinUrl) {
      say(`join from another browser on this machine (WebGPU needed): ${joinUrl}`);
      if (!tabModeAvailable()) say('(the contributor page does not have the swarm tab mode yet: that URL only shows the engine page)');
    }
    say(`or a Node peer: node bin/tabswarm.mjs peer --signal ${sig.signalUrl} --room ${room} --coordinator ${coordinator} --key ephemeral`);
    table = new LiveTable(s.view, { title: `demo ${run.runId}`, out: process.stdout });

    let finishedRun = false;
    let fail!: (e: Error) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    failed.catch(() => undefined);
    let left = n;
    if (nodePeers && values['in-process']) contributors = await startInProcess(n, sig.signalUrl, room, coordinator, dataChoice, swarmLog, plan);
    else if (nodePeers) {
      contributors = await startNodeChildren(
        n,
        sig.signalUrl,
        room,
        coordinator,
        dataChoice,
        say,
        verbose,
        (id, how, assigned, tail) => {
          // A peer's death is churn: the coordinator re-runs a step whose member vanished, and the run fails by
          // itself if a stage is left without a live replica. The demo gives up only when no peer is left, or when
          // one dies before it got a stage (a setup failure: the run waits for all N to start, it would never start).
          left--;
          if (finishedRun) return;
          if (!assigned) {
            say(`${id} exited with ${how} before it got a stage:\n  ${tail.slice(-15).join('\n  ')}`);
            fail(new Error(`Node peer ${id} exited with ${how} before the run started (the run needs all ${n})`));
            return;
          }
          say(`${id} exited with ${how} during the run (${left} of ${n} peer(s) left); the run goes on without it`);
          if (verbose || how.startsWith('code')) say(`  ${tail.slice(-15).join('\n  ')}`);
          if (left === 0) fail(new Error(`every Node peer is gone (the last, ${id}, exited with ${how})`));
        },
        plan,
      );
    } else contributors = await startTabs(n, joinUrl!, say, verbose);

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the run did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    let reports: StepReport[];
    try {
      reports = await Promise.race([s.finished(), failed, timeout]);
    } finally {
      clearTimeout(timer);
      finishedRun = true;
      table.stop();
    }
    const trainedAt = performance.now();
    let valLoss: number | null = null;
    if (sampleChars > 0 || evalCount > 0) {
      const params = await withElapsed('collecting the weights from the peers', swarmLog ?? say, (log) =>
        s.collectWeights({ rtcFactory: nodeRtcFactory(), log }),
      );
      const rt = await cliRuntime();
      try {
        if (evalCount > 0) valLoss = await validationLoss(rt, run, params, data.val, { maxBatches: evalCount });
        if (sampleChars > 0) {
          const text = await sampleText(rt, run.model, params, tokenizer, sampleChars, run.seed, runBottleneck(run));
          process.stdout.write(`\n--- sample after ${reports.length} steps ---\n${text}\n--------------\n`);
        }
      } finally {
        rt.destroy();
      }
    }
    s.release();
    if (ledgerPath && (await s.ledger.latest()) !== null)
      say(`ledger: ${ledgerPath} (tabswarm ledger verify ${ledgerPath} --coordinator ${s.sig.identity.fingerprint})`);
    const summary = s.finalSummary(valLoss);
    const ratios = fp32Ratios(s.view.view);
    const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(1)}x` : '-');
    say(
      `trained in ${((trainedAt - t0) / 1000).toFixed(1)} s wall (setup included); loss ${summary.first_loss.toFixed(4)} -> ${summary.last_loss.toFixed(4)}` +
        `${valLoss !== null ? `, val ${valLoss.toFixed(4)}` : ''}; wire vs fp32: stage boundaries ${x(ratios.pipeline)} fewer bytes, sync ${x(ratios.sync)}, all ${x(ratios.total)}`,
    );
    await contributors.stop();
    const adversaries = contributors.adversaries;
    contributors = undefined;
    for (const c of cleanups.splice(0).reverse()) await c();
    say(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // adversaries / evicted: the attacking peers' ids (--adversaries) and the peers the coordinator evicted.
    console.log(JSON.stringify({ ...summary, adversaries, evicted }));
    return 0;
  } catch (e) {
    failure = e as Error;
    throw e;
  } finally {
    if (failure) {
      table?.stop();
      session?.release();
      await contributors?.stop().catch(() => undefined);
      for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
    }
    exitSoon();
  }
}
