// `tabswarm coordinator`: runs a swarm's coordinator for a run given by flags, on a signaling server given by
// --signal (or its own, --serve, on loopback). Peers (`tabswarm peer`, contributor tabs) join the room; training
// starts when --min-peers have joined and every stage has one. Prints a live table, optionally a text sample from
// the trained weights (fetched from one replica per stage over WebRTC: tensors never pass the signaling server),
// and a JSON summary as the last line. The run itself (lifecycle, view, weight collection) is
// src/coordinator/run-lifecycle.ts; this file is flags and printing.
import { startSignalingServer, type SignalingServer } from '../../signaling-server/server';
import { DEFAULT_ROOM } from '../coordinator/run-builder';
import { CoordinatorRun } from '../coordinator/run-lifecycle';
import { sampleText } from '../coordinator/sample-text';
import { EVAL_BATCHES, validationLoss } from '../coordinator/val-loss';
import { runBottleneck } from '../coordinator/run-model';
import { describePlan } from '../coordinator/stage-budget';
import { nodeWebSocket } from '../net/rtc-node';
import { describeIce, fetchServeConfig, iceFlagOptions, iceFlagsHelp, iceFromFlags, rtcFactoryOf, splitServeFlag } from './ice-flags';
import { num, parse, str, UsageError } from './args';
import { cliRuntime, saveCheckpointFile } from './engine';
import { LiveTable } from './live-table';
import { withElapsed } from './progress';
import { runFlagOptions, runFlagsHelp, runFromFlags } from './run-flags';
import { corpus, dataFromFlags, exitSoon } from './swarm-common';
import { writeLedgerFile } from './ledger-file';
import { defaultKeyPath, identityFromFlag } from './key-file';
import { defaultStatePath, readStateFile, writeStateFile } from './run-state-file';

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const coordinatorSummary = 'coordinate a swarm run; peers join with `tabswarm peer` or a contributor tab';

export const coordinatorHelp = `tabswarm coordinator [flags]      coordinate a swarm run; peers join with \`tabswarm peer\` or a contributor tab
  --signal ws://127.0.0.1:8787/  signaling server        --serve [--port 0]   start one on 127.0.0.1 instead
  --serve URL                    use a \`tabswarm serve\` (signal URL, default room, ICE servers from URL/api/config)
${iceFlagsHelp}
  --room R (default: ${DEFAULT_ROOM})   --min-peers N (default: --stages) peers needed before step 0
  --plan-stages                  split the model by the memory budgets of the first --min-peers peers (\`tabswarm peer
                                 --memory-budget MIB\`) instead of --stages: the fewest stages that fit, each within
                                 its peer's budget; a swarm too small for the model is said and waits for more peers
  --key FILE                     the coordinator's key (default ~/.tabswarm/coordinator.key, created once): the room
                                 is bound to its fingerprint, which peers join with; \`--key ephemeral\`: a fresh one
  --token T                      a join token peers must present (\`tabswarm peer --token T\`)
${runFlagsHelp}
  --sample-chars 200             text sample from the trained weights at the end (0: none)
  --eval-batches ${EVAL_BATCHES}               validation batches for the summary's val_loss (0: no evaluation)
  --out FILE                     also write the trained weights as a checkpoint
  --step-timeout 120             seconds without progress before a step is re-run
  --mb-deadline-min 2            floor of a step's microbatch deadline, seconds (4 x the median of the last 8 steps'
                                 microbatch phases; members are pinged when it passes: docs/resilience.md)
  --ping-timeout 2               a pinged member silent this long is frozen: dropped, its microbatches go to its twins
  --restore-wait 600             a stage that lost every replica pauses the run until a peer brings a checkpoint of
                                 it (restored, maybe rolling the run back); after this many seconds without a copy
                                 the run fails (docs/resilience.md "Stage loss")
  --ledger FILE                  write the signed contribution ledger after every step (\`tabswarm ledger verify\`)
  --state FILE                   save the run after every step (default ~/.tabswarm/runs/<room>.json; atomic rename;
                                 \`none\`: never; with --key ephemeral the default is none)
  --resume                       resume the run saved in --state (same --key, same --room): re-adopt its running
                                 swarm and go on from its step (the run flags are the saved run's; docs/resilience.md)
  --verbose                      coordinator log on stderr`;

export async function coordinator(argv: string[]): Promise<number> {
  const { values } = parse(splitServeFlag(argv), {
    ...runFlagOptions,
    signal: { type: 'string' },
    serve: { type: 'string' },
    'serve-local': { type: 'boolean' },
    ...iceFlagOptions,
    port: { type: 'string' },
    room: { type: 'string' },
    'min-peers': { type: 'string' },
    'plan-stages': { type: 'boolean' },
    'sample-chars': { type: 'string' },
    'eval-batches': { type: 'string' },
    out: { type: 'string' },
    'step-timeout': { type: 'string' },
    'mb-deadline-min': { type: 'string' },
    'ping-timeout': { type: 'string' },
    'restore-wait': { type: 'string' },
    verbose: { type: 'boolean' },
    ledger: { type: 'string' },
    key: { type: 'string' },
    token: { type: 'string' },
    state: { type: 'string' },
    resume: { type: 'boolean' },
  });
  const serveUrl = str(values, 'serve');
  const served = serveUrl ? await fetchServeConfig(serveUrl) : undefined;
  const ice = iceFromFlags(values, served);
  const signal = str(values, 'signal') ?? served?.signal;
  const serveLocal = values['serve-local'] === true;
  if (!signal && !serveLocal) throw new UsageError('give --signal URL, --serve URL or --serve');
  if (signal && serveLocal) throw new UsageError('--signal (or --serve URL) and --serve exclude each other');
  const { tokenizer, data, spec } = await corpus(dataFromFlags(values));
  const flagRun = runFromFlags(values, { vocab: tokenizer.vocabSize, data: spec });
  const room = str(values, 'room') ?? served?.room ?? DEFAULT_ROOM;
  const minPeers = num(values, 'min-peers', flagRun.stages.length, { int: true, min: 1 });
  const sampleChars = num(values, 'sample-chars', 200, { int: true, min: 0 });
  const evalCount = num(values, 'eval-batches', EVAL_BATCHES, { int: true, min: 0 });
  const out = str(values, 'out');
  const ledgerPath = str(values, 'ledger');
  const log = values.verbose ? (s: string) => process.stderr.write(`${s}\n`) : undefined;
  const identity = await identityFromFlag(str(values, 'key'), defaultKeyPath('coordinator'), (s) => process.stderr.write(`[coordinator] ${s}\n`));
  const token = str(values, 'token');
  // An ephemeral key can never come back for its saved run: without --state it saves nothing (`--state none`: never).
  const stateFlag = str(values, 'state');
  const statePath = stateFlag === 'none' ? null : (stateFlag ?? (str(values, 'key') === 'ephemeral' ? null : defaultStatePath(room)));
  if (values.resume && !statePath) throw new UsageError('--resume needs a saved run: give --state FILE and the --key that ran it');
  const resume = values.resume && statePath ? await readStateFile(statePath, { room, coordinator: identity.fingerprint }) : undefined;
  if (resume && resume.run.model.vocab_size !== tokenizer.vocabSize)
    throw new Error(`--resume: the saved run's vocabulary (${resume.run.model.vocab_size}) is not --data's (${tokenizer.vocabSize})`);
  if (resume && resume.run.data?.trainSha256 !== spec?.trainSha256)
    throw new Error(`--resume: the saved run trained on ${resume.run.data?.name ?? 'the default corpus'}, not this --data/--tokenizer`);
  const run = resume?.run ?? flagRun;
  if (resume)
    process.stderr.write(
      `[coordinator] resuming run ${run.runId} from ${statePath} at step ${resume.step} of ${run.steps} (saved ${resume.savedAt}): re-adopting its swarm\n`,
    );
  let server: SignalingServer | undefined;
  if (serveLocal) server = await startSignalingServer({ host: '127.0.0.1', port: num(values, 'port', 0, { int: true, min: 0 }) });
  const url = server?.url ?? signal;
  if (!url) throw new UsageError('give --signal URL or --serve');
  const session = await CoordinatorRun.start({
    url,
    room,
    run,
    minPeers,
    log,
    WebSocket: nodeWebSocket,
    identity,
    token,
    holdShutdown: true,
    stepTimeoutMs: num(values, 'step-timeout', 120, { min: 1 }) * 1000,
    mbDeadlineMinMs: num(values, 'mb-deadline-min', 2, { min: 0 }) * 1000,
    pingTimeoutMs: num(values, 'ping-timeout', 2, { min: 0.01 }) * 1000,
    restoreWaitMs: num(values, 'restore-wait', 600, { min: 0 }) * 1000,
    onLedger: ledgerPath ? (text) => writeLedgerFile(ledgerPath, text) : undefined,
    resume,
    planStages: values['plan-stages'] === true && !resume,
    onRunState: statePath ? (text) => writeStateFile(statePath, text) : undefined,
  });
  // A pause is news even without --verbose: the run waits for a copy of a lost stage.
  session.coordinator.events.on('plan', (e) =>
    process.stderr.write(
      e.ok
        ? `[coordinator] planned from the peers' budgets: ${describePlan({ stages: e.stages, bytes: e.bytes, modelBytes: e.modelBytes })}\n`
        : `[coordinator] ${e.waiting} peer(s) cannot hold the model yet; waiting for more: ${e.reason}\n`,
    ),
  );
  session.coordinator.events.on('paused', (e) => process.stderr.write(`[coordinator] run paused at step ${e.step}: ${e.reason}\n`));
  session.coordinator.events.on('resumed', (e) =>
    process.stderr.write(`[coordinator] run resumed at step ${e.step}${e.step < e.from ? ` (rolled back from step ${e.from})` : ''}\n`),
  );
  const stop = () => {
    session.close();
    void server?.close().then(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  try {
    process.stderr.write(
      `[coordinator] run ${run.runId}: ${run.model.n_layer} layers / ${values['plan-stages'] && !resume ? "stages planned from the peers' budgets" : `${run.stages.length} stages`}, ${run.steps} steps of ${run.M}x${run.B}x${run.T} tokens\n` +
        `[coordinator] waiting for ${minPeers} peer(s) in room "${room}" on ${url}\n` +
        `[coordinator] coordinator key fingerprint ${identity.fingerprint}\n` +
        `[coordinator] ${describeIce(ice)} (weight collection; peers bring their own: --stun/--turn, --serve URL)\n` +
        `[coordinator]   node:    tabswarm peer --signal ${url} --room ${room} --coordinator ${identity.fingerprint}${token ? ' --token <token>' : ''}\n` +
        `[coordinator]   tab:     <contributor page>?signal=${encodeURIComponent(url)}&room=${encodeURIComponent(room)}&coordinator=${identity.fingerprint}${token ? '&token=<token>' : ''}\n`,
    );
    const table = new LiveTable(session.view, { title: run.runId });
    try {
      await session.finished();
    } finally {
      table.stop();
    }
    let valLoss: number | null = null;
    if (sampleChars > 0 || out || evalCount > 0) {
      const params = await withElapsed('collecting the weights from the peers', log ?? (() => undefined), (l) =>
        session.collectWeights({ rtcFactory: rtcFactoryOf(ice), log: log ? l : undefined }),
      );
      if (out) {
        const bottleneck = runBottleneck(run);
        saveCheckpointFile(out, { config: run.model, params, tokenizer: tokenizer.toJSON(), ...(bottleneck ? { bottleneck } : {}) });
        process.stderr.write(`[coordinator] wrote ${out}\n`);
      }
      if (sampleChars > 0 || evalCount > 0) {
        const rt = await cliRuntime();
        try {
          if (evalCount > 0) valLoss = await validationLoss(rt, run, params, data.val, { maxBatches: evalCount });
          if (sampleChars > 0) {
            const text = await sampleText(rt, run.model, params, tokenizer, sampleChars, run.seed, runBottleneck(run));
            process.stdout.write(`\n--- sample ---\n${text}\n--------------\n`);
          }
        } finally {
          rt.destroy();
        }
      }
    }
    await session.savedRun();
    session.release();
    if (ledgerPath && (await session.ledger.latest()) !== null)
      process.stderr.write(
        `[coordinator] ledger: ${ledgerPath} (tabswarm ledger verify ${ledgerPath} --coordinator ${session.sig.identity.fingerprint})\n`,
      );
    console.log(JSON.stringify(session.finalSummary(valLoss)));
    return 0;
  } finally {
    process.off('SIGINT', stop);
    await new Promise((r) => setTimeout(r, 200)); // let the shutdown reach the server before the socket closes
    session.close();
    await server?.close();
    exitSoon();
  }
}
