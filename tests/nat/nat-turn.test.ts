// A swarm across two NATs (docs/deployment.md "NAT traversal"): peers A and B each behind its own NAT router
// (nftables masquerade, random ports), the signaling server, the coordinator and Debian's coturn on a public segment,
// all in network namespaces this test creates (tests/nat/nat-net.sh) and tears down. With TURN (relay only, TURN REST
// credentials from a static secret, as `tabswarm serve --turn-secret` hands out) the run completes and coturn relayed
// the traffic; without TURN (STUN only) the run fails fast, coordinator and peers saying NAT traversal failed and what
// to configure, and exiting non-zero. Needs root (npm test runs as root in `unshare -n`), nsenter, nft, turnserver.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, nodeProc, tabswarm, until, type Proc } from '../support/procs';

const ROOT = join(import.meta.dirname, '..', '..');
const PUBLIC = '198.51.100.2';
const SIGNAL = `ws://${PUBLIC}:8787/`;
const TURN_URL = `turn:${PUBLIC}:3478?transport=udp`;
const SECRET = 'nat-test-static-secret';
const STEPS = 3;
const TINY = ['--n-layer', '2', '--n-head', '2', '--n-embd', '32', '--block-size', '32', '--batch-size', '2', '--microbatches', '2'];
const RUN = ['--stages', '2', '--steps', String(STEPS), '--lr', '1e-2', '--warmup', '1', '--eval-batches', '0', ...TINY];
const LOG = process.env.SWARM_LOG === '1';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canRun = process.getuid?.() === 0 && ['nsenter', 'nft', 'turnserver', 'unshare'].every(has);

/** TURN REST credentials (what `serve --turn-secret` hands out): `<expiry>:tabswarm`, base64 HMAC-SHA1 of it. */
function turnCredentials(secret: string, ttlS = 600): { user: string; pass: string } {
  const user = `${Math.floor(Date.now() / 1000) + ttlS}:tabswarm`;
  return { user, pass: createHmac('sha1', secret).update(user).digest('base64') };
}

const holders: ChildProcess[] = [];
let ns: { A: number; RA: number; B: number; RB: number; P: number };
let coturn: ChildProcess | undefined;
// A file: coturn's stdout is block-buffered into a pipe, its log file is written line by line.
const COTURN_LOG = join(mkdtempSync(join(tmpdir(), 'tabswarm-nat-')), 'coturn.log');
const coturnLog = () => (existsSync(COTURN_LOG) ? readFileSync(COTURN_LOG, 'utf8') : '');

/** A process holding a fresh, empty network namespace (its death frees the namespace and its links). */
async function holder(): Promise<number> {
  const cp = spawn('unshare', ['-n', 'sleep', '900'], { stdio: 'ignore' });
  holders.push(cp);
  const pid = cp.pid;
  if (pid === undefined) throw new Error('unshare did not start');
  const mine = readlinkSync('/proc/self/ns/net');
  for (let i = 0; i < 200; i++) {
    // unshare execs sleep once the namespace is made: wait for that, or nsenter would join ours.
    const its = existsSync(`/proc/${pid}/ns/net`) ? readlinkSync(`/proc/${pid}/ns/net`) : mine;
    if (its !== mine) return pid;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the namespace holder did not get its own namespace');
}

function show(name: string, p: Proc): Proc {
  if (LOG) p.cp.stderr?.on('data', (d: Buffer) => process.stderr.write(`[${name}] ${d.toString()}`));
  return p;
}

function coordinator(extra: string[]): Proc {
  return show(
    'coord',
    tabswarm(['coordinator', '--signal', SIGNAL, '--room', 'nat', '--key', 'ephemeral', '--verbose', ...RUN, ...extra], { netns: ns.P }),
  );
}

function peer(netns: number, name: string, fp: string, extra: string[]): Proc {
  const args = ['peer', '--signal', SIGNAL, '--room', 'nat', '--coordinator', fp, '--key', 'ephemeral', '--throughput', '1000', '--verbose'];
  return show(name, tabswarm([...args, ...extra], { netns }));
}

const fingerprint = (p: Proc) => until(p, () => /coordinator key fingerprint ([0-9a-f]{64})/.exec(p.err())?.[1], 'coordinator fingerprint');

describe.skipIf(!canRun)('two peers behind NATs', () => {
  beforeAll(async () => {
    ns = { A: await holder(), RA: await holder(), B: await holder(), RB: await holder(), P: await holder() };
    const net = spawnSync('bash', [join(ROOT, 'tests/nat/nat-net.sh'), ...[ns.A, ns.RA, ns.B, ns.RB, ns.P].map(String)], { encoding: 'utf8' });
    if (net.status !== 0) throw new Error(`nat-net.sh failed: ${net.stderr}`);
    coturn = spawn(
      'nsenter',
      [
        ...['-t', String(ns.P), '-n', '--', 'turnserver', '-n', `--listening-ip=${PUBLIC}`, `--relay-ip=${PUBLIC}`, '--listening-port=3478'],
        ...['--use-auth-secret', `--static-auth-secret=${SECRET}`, '--realm=tabswarm', '--no-tls', '--no-dtls', '--no-cli'],
        ...[`--log-file=${COTURN_LOG}`, '--simple-log', '--verbose', '--pidfile=', '--min-port=49152', '--max-port=49999'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = show('signal', nodeProc(['bin/run-ts.mjs', 'signaling-server/main.ts', '--host', PUBLIC, '--port', '8787'], { netns: ns.P }));
    await until(server, () => (/\[signaling\] ready/.test(server.out() + server.err()) ? true : null), 'signaling server up');
  }, 30_000);

  afterAll(async () => {
    await killAll();
    coturn?.kill('SIGKILL');
    for (const h of holders) h.kill('SIGKILL');
    rmSync(join(COTURN_LOG, '..'), { recursive: true, force: true });
  });

  it('the NAT works: the public segment sees the router, not the peer', () => {
    // A UDP datagram from A to P arrives from RA's public address (masquerade), so A's host candidate is useless there.
    const script = `const d=require('dgram');const s=d.createSocket('udp4');s.on('message',(m,r)=>{console.log(r.address);process.exit(0)});s.bind(40000,'${PUBLIC}',()=>process.send?.('x'));setTimeout(()=>process.exit(1),5000)`;
    const recv = spawn('nsenter', ['-t', String(ns.P), '-n', '--', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let got = '';
    recv.stdout.on('data', (d: Buffer) => (got += d.toString()));
    const send = `const d=require('dgram');const s=d.createSocket('udp4');const t=setInterval(()=>s.send('x',40000,'${PUBLIC}'),100);setTimeout(()=>{clearInterval(t);s.close()},3000)`;
    spawnSync('nsenter', ['-t', String(ns.A), '-n', '--', process.execPath, '-e', send]);
    return new Promise<void>((resolve) =>
      recv.once('exit', () => {
        expect(got.trim()).toBe('198.51.100.11');
        resolve();
      }),
    );
  });

  it('with TURN (relay only) the run completes and its traffic goes through the relay', async () => {
    const { user, pass } = turnCredentials(SECRET);
    const ice = ['--turn', TURN_URL, '--turn-user', user, '--turn-pass', pass, '--relay-only'];
    const coord = coordinator([...ice, '--sample-chars', '8']);
    const fp = await fingerprint(coord);
    const a = peer(ns.A, 'A', fp, ice);
    const b = peer(ns.B, 'B', fp, ice);
    const st = (p: Proc) => (p.cp.exitCode !== null || p.cp.signalCode !== null ? ` (exited ${p.cp.exitCode ?? p.cp.signalCode})` : ' (running)');
    const tails = () =>
      `\n--- coordinator${st(coord)}\n${coord.err().slice(-3000)}\n--- A${st(a)}\n${a.err().slice(-2000)}\n--- B${st(b)}\n${b.err().slice(-2000)}`;
    // A run that hangs says where (the processes' last lines), instead of a bare test timeout.
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the relayed run did not end within 130 s:${tails()}\n--- coturn\n${coturnLog().slice(-2000)}`)),
        130_000,
      );
    });
    const [c, ea, eb] = await Promise.race([Promise.all([coord.exited, a.exited, b.exited]), hung]).finally(() => clearTimeout(timer));
    const why = tails();
    expect(c.code, why).toBe(0);
    expect(ea.code, why).toBe(0);
    expect(eb.code, why).toBe(0);
    const summary = JSON.parse(coord.out().trim().split('\n').pop() ?? '{}') as { steps?: number };
    expect(summary.steps, why).toBe(STEPS);
    expect(coord.out()).toMatch(/--- sample ---/); // the weights came to the coordinator through the relay too
    // Both stages held, one behind each NAT.
    expect(`${a.err()}${b.err()}`).toMatch(/stage 0 \[/);
    expect(`${a.err()}${b.err()}`).toMatch(/stage 1 \[/);
    for (const p of [a, b]) expect(p.err()).toMatch(/ICE: turn:198\.51\.100\.2:3478\?transport=udp, relay only; bind any/);
    // coturn allocated relays for the peers (authenticated with the REST credentials) and relayed their packets.
    const log = coturnLog();
    expect(log, log.slice(-3000)).toMatch(/ALLOCATE processed, success/);
    expect(log).toMatch(new RegExp(`username=<${user.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>`));
    expect(log).toMatch(/CHANNEL_BIND processed, success/);
    // And each peer's link to the other was selected over relay candidates on both ends.
    const idOf = (p: Proc) => /\[peer ([0-9a-f]+)\] joined room/.exec(p.err())?.[1] ?? 'none';
    expect(a.err(), why).toMatch(new RegExp(`link to ${idOf(b)} open over a relay -> relay candidate pair`));
    expect(b.err(), why).toMatch(new RegExp(`link to ${idOf(a)} open over a relay -> relay candidate pair`));
  }, 150_000);

  it('without TURN the run fails fast, saying NAT traversal failed and what to configure', async () => {
    const stun = ['--stun', `stun:${PUBLIC}:3478`];
    const coord = coordinator(['--sample-chars', '0']);
    const fp = await fingerprint(coord);
    const a = peer(ns.A, 'A', fp, stun);
    const b = peer(ns.B, 'B', fp, stun);
    await until(coord, () => (/membership epoch 1/.test(coord.err()) ? true : null), 'first membership');
    const t0 = performance.now();
    const [c, ea, eb] = await Promise.all([coord.exited, a.exited, b.exited]);
    const s = (performance.now() - t0) / 1000;
    const why = `\n--- coordinator\n${coord.err().slice(-3000)}\n--- A\n${a.err().slice(-2000)}\n--- B\n${b.err().slice(-2000)}`;
    expect(c.code, why).not.toBe(0);
    expect(ea.code, why).not.toBe(0);
    expect(eb.code, why).not.toBe(0);
    const msg = /NAT traversal failed between [0-9a-f]+ and [0-9a-f]+ \([^)]*candidates tried: [^)]*srflx[^)]*\)/;
    for (const p of [coord, a, b]) {
      expect(p.err(), why).toMatch(msg);
      expect(p.err(), why).toMatch(/tabswarm serve --turn turn:HOST:3478 --turn-secret/);
    }
    // The peers had server-reflexive candidates (STUN worked) and no relay: the message counts them.
    expect(coord.err()).toMatch(/[1-9]\d* srflx\/0 relay/);
    expect(s, why).toBeLessThan(60);
    if (LOG) process.stderr.write(`[nat] failed ${s.toFixed(1)} s after the first membership\n`);
  }, 120_000);
});
