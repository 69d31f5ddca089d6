// `tabswarm peer`: a headless Node contributor, a first-class swarm peer (src/swarm/peer.ts) on this machine's GPU
// (Dawn; lavapipe on a machine without one). Joins the room, benchmarks, gets a stage from the coordinator, trains
// until the coordinator shuts the run down, then leaves cleanly and exits 0.
import { DEFAULT_ROOM } from '../coordinator/run-builder';
import { FINGERPRINT_RE } from '../net/identity';
import { nodeRuntime } from '../gpu/node-runtime';
import { nodeRtcFactory, nodeWebSocket } from '../net/rtc-node';
import { SwarmPeer } from '../swarm/peer';
import { ATTACK_MODES, AttackSpecError, formatAttack, parseAttack, type AttackSpec } from '../swarm/adversary';
import { num, parse, required, str, UsageError } from './args';
import { defaultKeyPath, identityFromFlag } from './key-file';
import { corpus, exitSoon } from './swarm-common';

export const peerHelp = `tabswarm peer --signal ws://127.0.0.1:8787/ --coordinator FP [flags]   join a swarm as a headless Node contributor
  --coordinator FP   the run's coordinator key fingerprint (64 hex; \`tabswarm coordinator\` prints it)
  --room ${DEFAULT_ROOM}        room of the run              --token T         the room's join token, if it has one
  --key FILE         this peer's key (default ~/.tabswarm/peer.key, created once; its id is the key's);
                     \`--key ephemeral\`: a fresh key (several peers on one machine need one key each)
  --throughput N     skip the join benchmark, announce N tokens/s
  --data public/tinyshakespeare.txt               the run's corpus (must match the coordinator's)
  --verbose          swarm log on stderr
  --attack MODE      FOR TESTS AND DEMOS ONLY: this peer attacks the run (${ATTACK_MODES.join(', ')}; docs/trust.md)`;

export async function peer(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    signal: { type: 'string' },
    room: { type: 'string' },
    coordinator: { type: 'string' },
    key: { type: 'string' },
    token: { type: 'string' },
    throughput: { type: 'string' },
    data: { type: 'string' },
    verbose: { type: 'boolean' },
    attack: { type: 'string' },
  });
  const url = required(values, 'signal');
  const attack = attackFromFlag(str(values, 'attack'));
  const room = str(values, 'room') ?? DEFAULT_ROOM;
  const coordinator = required(values, 'coordinator').toLowerCase();
  if (!FINGERPRINT_RE.test(coordinator)) throw new UsageError(`--coordinator: "${coordinator}" is not a key fingerprint (64 hex digits)`);
  const throughput = values.throughput === undefined ? undefined : num(values, 'throughput', 1, { min: 1e-6 });
  const identity = await identityFromFlag(str(values, 'key'), defaultKeyPath('peer'), (s) => process.stderr.write(`[peer] ${s}\n`));
  const peerId = identity.id;
  const say = (s: string) => process.stderr.write(`[peer ${peerId}] ${s}\n`);
  const log = values.verbose ? (s: string) => process.stderr.write(`${s}\n`) : undefined;
  let data: ReturnType<typeof corpus>['data'] | undefined;
  const p = await SwarmPeer.join({
    url,
    room,
    coordinator,
    identity,
    token: str(values, 'token'),
    WebSocket: nodeWebSocket,
    rtcFactory: nodeRtcFactory(),
    runtime: () => nodeRuntime({ quiet: !values.verbose }),
    tokens: () => (data ??= corpus(str(values, 'data')).data).train,
    platform: 'node',
    throughput,
    log,
    ...(attack ? { attack } : {}),
  });
  if (attack) say(`ATTACKING the run: ${formatAttack(attack)} (tests and demos only)`);
  say(`joined room "${room}" (${Math.round(p.throughput)} tok/s benchmark)`);
  const result = await new Promise<{ reason?: string; error?: Error }>((resolve) => {
    p.events.on('assigned', ({ stage, run }) =>
      say(`stage ${stage} [${run.stages[stage].layerStart}, ${run.stages[stage].layerEnd}) of run ${run.runId}`),
    );
    p.events.on('state-received', ({ from, step, ms }) => say(`copied stage state from ${from} at step ${step} (${ms.toFixed(0)} ms)`));
    p.events.on('error', (e) => say(`error: ${e.message}`));
    void p.finished().then(resolve);
    p.signaling.on('close', ({ code, reason }) => resolve({ error: new Error(`signaling connection closed (${code} ${reason})`) }));
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve({ reason: sig }));
  });
  p.close();
  exitSoon(2000);
  if (result.error) {
    say(result.error.message);
    return 1;
  }
  say(`done: ${result.reason ?? 'shutdown'} (${p.runtime?.counters.forward ?? 0} forwards, ${p.runtime?.counters.backward ?? 0} backwards)`);
  // Give the GPU teardown (close() destroys the device after the queue drains) a moment.
  await new Promise((r) => setTimeout(r, 100));
  return 0;
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
