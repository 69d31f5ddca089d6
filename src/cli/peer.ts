// `tabswarm peer`: a headless Node contributor, a first-class swarm peer (src/swarm/peer.ts) on this machine's GPU
// (Dawn; lavapipe on a machine without one). Joins the room, benchmarks, gets a stage from the coordinator, trains
// until the coordinator shuts the run down, then leaves cleanly and exits 0.
import { DEFAULT_ROOM } from '../coordinator/run-builder';
import { FINGERPRINT_RE } from '../net/identity';
import { nodeRuntime } from '../gpu/node-runtime';
import { nodeWebSocket } from '../net/rtc-node';
import { isNatFailure } from '../net/nat-failure';
import { describeIce, fetchServeConfig, iceFlagOptions, iceFlagsHelp, iceFromFlags, roomFromServe, rtcFactoryOf } from './ice-flags';
import { SwarmPeer } from '../swarm/peer';
import { ATTACK_MODES, AttackSpecError, formatAttack, parseAttack, type AttackSpec } from '../swarm/adversary';
import { parseSlowFactor, type SlowSpec } from '../swarm/slow-compute';
import { num, parse, required, str, UsageError } from './args';
import { defaultKeyPath, identityFromFlag } from './key-file';
import { dataFlagOptions, dataFromFlags, exitSoon, peerDataSource } from './swarm-common';
import { DataRefusal, runTokens } from '../swarm/run-data';
import { checkpointDirFromFlag } from './checkpoint-dir';

/** One line for `tabswarm --help` and the README's CLI reference (src/cli/commands.ts). */
export const peerSummary = 'join a swarm as a headless Node contributor (WebGPU through Dawn)';

export const peerHelp = `tabswarm peer --signal ws://127.0.0.1:8787/ --coordinator FP [flags]   join a swarm as a headless Node contributor
  (or: tabswarm peer --serve https://HOST   signal URL, room, coordinator and ICE servers from a \`tabswarm serve\`)
  --coordinator FP   the run's coordinator key fingerprint (64 hex; \`tabswarm coordinator\` prints it)
  --room ${DEFAULT_ROOM}        room of the run              --token T         the room's join token, if it has one
  --key FILE         this peer's key (default ~/.tabswarm/peer.key, created once; its id is the key's);
                     \`--key ephemeral\`: a fresh key (several peers on one machine need one key each)
  --throughput N     skip the join benchmark, announce N tokens/s
  --memory-budget MIB   memory this peer lets its model slice use (weights, gradients, AdamW state, activations):
                     the coordinator gives it only a stage that fits, or refuses it saying what the run needs
  --checkpoint-dir DIR   where this peer keeps its stage checkpoints (default ~/.tabswarm/checkpoints/<peer id>/;
                     with \`--key ephemeral\` a temporary one, removed at exit; \`none\`: keep none). Saved every
                     run.checkpoint.every steps and on SIGTERM/SIGINT; a lost stage or a restarted peer is restored
                     from them (docs/resilience.md)
  --data FILE        the run's text (default: its data.url, relative to --serve; else public/tinyshakespeare.txt):
                     tokenized as the run says and checked against its sha256 (a mismatch refuses to train)
  --tokenizer char|gpt2 --vocab used|full   optional: the run names them; given, they must be the run's
  --verbose          swarm log on stderr
${iceFlagsHelp}
  --coordinator-wait 600   seconds to wait for a coordinator that left (it may come back: \`tabswarm coordinator
                     --resume\`); after that the peer exits with code 3 saying so
  --attack MODE      FOR TESTS AND DEMOS ONLY: this peer attacks the run (${ATTACK_MODES.join(', ')}; docs/trust.md)
  --slow FACTOR      FOR TESTS AND DEMOS ONLY: this peer's compute is FACTOR times slower (live rebalancing; docs/resilience.md)`;

export async function peer(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    signal: { type: 'string' },
    serve: { type: 'string' },
    ...iceFlagOptions,
    room: { type: 'string' },
    coordinator: { type: 'string' },
    key: { type: 'string' },
    token: { type: 'string' },
    throughput: { type: 'string' },
    'memory-budget': { type: 'string' },
    ...dataFlagOptions,
    verbose: { type: 'boolean' },
    attack: { type: 'string' },
    'coordinator-wait': { type: 'string' },
    slow: { type: 'string' },
    'checkpoint-dir': { type: 'string' },
  });
  const serveUrl = str(values, 'serve');
  const served = serveUrl ? await fetchServeConfig(serveUrl) : undefined;
  const ice = iceFromFlags(values, served);
  const url = served && !values.signal ? served.signal : required(values, 'signal');
  const attack = attackFromFlag(str(values, 'attack'));
  const slow = slowFromFlag(str(values, 'slow'));
  const live = served ? roomFromServe(served, str(values, 'room'), str(values, 'coordinator')) : undefined;
  const room = live?.room ?? str(values, 'room') ?? DEFAULT_ROOM;
  const coordinator = (live?.coordinator ?? required(values, 'coordinator')).toLowerCase();
  if (!FINGERPRINT_RE.test(coordinator)) throw new UsageError(`--coordinator: "${coordinator}" is not a key fingerprint (64 hex digits)`);
  const throughput = values.throughput === undefined ? undefined : num(values, 'throughput', 1, { min: 1e-6 });
  const memoryBytes = values['memory-budget'] === undefined ? undefined : num(values, 'memory-budget', 1, { min: 1 }) * 2 ** 20;
  const identity = await identityFromFlag(str(values, 'key'), defaultKeyPath('peer'), (s) => process.stderr.write(`[peer] ${s}\n`));
  const peerId = identity.id;
  const say = (s: string) => process.stderr.write(`[peer ${peerId}] ${s}\n`);
  const log = values.verbose ? (s: string) => process.stderr.write(`${s}\n`) : undefined;
  const ckDir = checkpointDirFromFlag(str(values, 'checkpoint-dir'), peerId, { ephemeral: str(values, 'key') === 'ephemeral', log: say });
  const checkpoints = ckDir?.store;
  const dataChoice = dataFromFlags(values);
  const dataFlagsGiven = values.tokenizer !== undefined || values.vocab !== undefined;
  const p = await SwarmPeer.join({
    url,
    room,
    coordinator,
    identity,
    token: str(values, 'token'),
    WebSocket: nodeWebSocket,
    rtcFactory: rtcFactoryOf(ice),
    runtime: () => nodeRuntime({ quiet: !values.verbose }),
    tokens: (run) => {
      const want = run.data ? { tokenizer: run.data.tokenizer, vocab: run.data.vocab } : { tokenizer: 'char' };
      if (dataFlagsGiven && (want.tokenizer !== dataChoice.tokenizer || (dataChoice.vocab && want.vocab !== dataChoice.vocab)))
        throw new DataRefusal(`--tokenizer/--vocab: run ${run.runId} uses ${want.tokenizer}${want.vocab ? ` (vocab ${want.vocab})` : ''}`);
      return runTokens(run, peerDataSource(dataChoice, str(values, 'serve')));
    },
    platform: 'node',
    throughput,
    ...(memoryBytes !== undefined ? { memoryBytes } : {}),
    log,
    ...(attack ? { attack } : {}),
    coordinatorWaitMs: num(values, 'coordinator-wait', 600, { min: 0.001 }) * 1000,
    ...(slow ? { slow } : {}),
    ...(checkpoints ? { checkpoints } : {}),
  });
  if (slow) say(`SLOWED: compute ${slow.factor}x slower (tests and demos only)`);
  if (attack) say(`ATTACKING the run: ${formatAttack(attack)} (tests and demos only)`);
  say(describeIce(ice));
  say(`joined room "${room}" (${Math.round(p.throughput)} tok/s benchmark); checkpoints: ${checkpoints ? checkpoints.dir : 'none'}`);
  const result = await new Promise<{ reason?: string; error?: Error; code?: number }>((resolve) => {
    // The coordinator left and did not come back in time: exit 3 with what happened.
    p.events.on('coordinator-lost', (error) => resolve({ error, code: 3 }));
    p.events.on('state', (s) => s === 'waiting-coordinator' && say(`the coordinator left: waiting for it (--coordinator-wait)`));
    p.events.on('assigned', ({ stage, run }) =>
      say(`stage ${stage} [${run.stages[stage].layerStart}, ${run.stages[stage].layerEnd}) of run ${run.runId}`),
    );
    p.events.on('state-received', ({ from, step, ms }) => say(`copied stage state from ${from} at step ${step} (${ms.toFixed(0)} ms)`));
    p.events.on('error', (e) => say(`error: ${e.message}`));
    // Not the run's data (another file, a tampered download): this peer cannot help the run; it says why and exits.
    p.events.on('error', (e) => e instanceof DataRefusal && resolve({ error: e, code: 1 }));
    // A stage lost every replica: the coordinator pauses the run until it is restored (docs/resilience.md).
    p.signaling.on('control', ({ msg }) => {
      if (msg.type === 'run-state')
        say(msg.paused ? `run paused at step ${msg.step}: ${msg.reason}` : `run goes on at step ${msg.step} (${msg.reason})`);
    });
    // The coordinator ended the run because two members cannot link through their NATs: a failure, exit 1.
    void p.finished().then((r) => resolve(r.reason && isNatFailure(r.reason) ? { error: new Error(r.reason), code: 1 } : r));
    // A broken signaling connection is rejoined (docs/resilience.md): only its final close ends the peer.
    p.signaling.on('reconnecting', ({ attempt, delayMs, code, reason }) =>
      say(`signaling connection lost (${code}${reason ? `: ${reason}` : ''}): reconnect attempt ${attempt} in ${Math.round(delayMs)} ms`),
    );
    p.signaling.on('reconnected', ({ ms }) => say(`signaling reconnected after ${Math.round(ms)} ms`));
    p.signaling.on('close', ({ code, reason }) => resolve({ error: new Error(`signaling connection closed (${code} ${reason})`) }));
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve({ reason: sig }));
  });
  if (checkpoints && p.runtime) {
    // Its stage as it is now (best effort, bounded): a restarted peer or a lost stage is restored from it.
    const saved = await p.saveNow(15_000);
    say(saved ? `checkpoint saved in ${checkpoints.dir}` : 'checkpoint on exit: gave up after 15 s');
  }
  if (ckDir?.temporary) await ckDir.store.destroy().catch(() => undefined); // an ephemeral key never comes back for them
  p.close();
  exitSoon(2000);
  if (result.error) {
    say(result.error.message);
    return result.code ?? 1;
  }
  say(`done: ${result.reason ?? 'shutdown'} (${p.runtime?.counters.forward ?? 0} forwards, ${p.runtime?.counters.backward ?? 0} backwards)`);
  // Give the GPU teardown (close() destroys the device after the queue drains) a moment.
  await new Promise((r) => setTimeout(r, 100));
  return 0;
}

/** `--slow FACTOR` (tests and demos only): the slowdown, or a UsageError. */
export function slowFromFlag(flag: string | undefined): SlowSpec | undefined {
  if (flag === undefined) return undefined;
  try {
    return { factor: parseSlowFactor(flag) };
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

/** `--attack MODE` (tests and demos only): the attack, or a UsageError naming the modes. */
export function attackFromFlag(flag: string | undefined): AttackSpec | undefined {
  if (flag === undefined) return undefined;
  try {
    return parseAttack(flag);
  } catch (e) {
    if (e instanceof AttackSpecError) throw new UsageError(`--attack: ${e.message}`);
    throw e;
  }
}
