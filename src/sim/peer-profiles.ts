// The simulated contributors: each peer's compute, home connection, churn and honesty, drawn from the scenario's seed.
// Every figure below is stated with where it comes from; the shares of each class are our assumptions for a public
// browser swarm and are named as such.
import { stageMicrobatchFlops } from '../model/flops';
import { layerFlops } from './microbatch-cost';
import type { Rng } from './rng';
import type { PeerProfile, Scenario } from './types';

export { microbatchCost } from './microbatch-cost';

// ---- Compute ------------------------------------------------------------------------------------------------------
// Measured anchor: `tabswarm train` / `npm run bench -- train` on lavapipe (Mesa 25, 2 AMD EPYC cores) trains the
// reference config (n_layer 4, n_head 4, n_embd 128, block 64, vocab 65, B 12) at 3,519 tokens/s
// (/work/shared/notes/anchors.md, "Measured on this machine"). Times that config's training FLOPs per token
// (src/model/flops.ts over the whole model: 5.16 MFLOP/token) that is ~18.2 GFLOP/s of useful work.
export const LAVAPIPE_REFERENCE_TOKENS_PER_S = 3519;
export const REFERENCE_MODEL = { n_layer: 4, n_head: 4, n_embd: 128, block_size: 64, vocab_size: 65 } as const;
export const REFERENCE_B = 12;
// SwiftShader (Chromium's CPU WebGPU, what a tab without a usable GPU gets): the same register-blocked matmul kernel
// runs at 2.62 GFLOP/s in Chromium/SwiftShader against 9.0 on Node/lavapipe on the same 2 cores
// (/work/shared/notes/webgpu-on-cpu.md, "Matmul f32"); we scale the lavapipe figure by that ratio (~1,020 tokens/s).
export const SWIFTSHADER_OVER_LAVAPIPE = 2.62 / 9.0;
// GPUs: published peak FP32 rates (vendor spec sheets: shader cores x boost clock x 2 FLOP per FMA)
//   integrated laptop  Intel Iris Xe (96 EU, 1.35 GHz)       ~2.1 TFLOPS
//   mid desktop        NVIDIA RTX 3060 (3584 cores, 1.78 GHz) 12.7 TFLOPS
//   high-end           NVIDIA RTX 4090 (16384 cores, 2.52 GHz) 82.6 TFLOPS
// times GPU_EFFICIENCY: at this model's shapes (768 x 128 x 384 matmuls) WebGPU kernels are occupancy- and
// launch-bound; our kernels reach 15-31 GFLOP/s at model shapes on lavapipe against 125-162 for OpenBLAS on the same
// cores (anchors.md), i.e. ~15-20% of a tuned library; we take 10% of a GPU's peak for the matmul work, plus a fixed
// cost per kernel launch: LAUNCHES_PER_LAYER (a block's forward is ~12 launches: 2 layernorms, 4 matmuls, attention,
// GELU, residuals; backward ~2x) at LAUNCH_S each (WebGPU dispatch + queue overhead in Chromium, tens of
// microseconds). The CPU adapters' measured figure already includes their launch costs.
export const GPU_EFFICIENCY = 0.1;
export const LAUNCHES_PER_LAYER = 36;
export const LAUNCH_S = 25e-6;
/** Spread of one device's rate around its class (clocks, thermals, other tabs): log-normal sigma. */
export const DEVICE_SIGMA = 0.25;

export type DeviceKind = 'swiftshader' | 'lavapipe' | 'gpu';

export interface DeviceClass {
  name: string;
  /** Our assumption of the share of contributors with this device. */
  share: number;
  kind: DeviceKind;
  /** Peak FP32 FLOP/s (GPUs only). */
  peakFlops?: number;
}

export const DEVICE_CLASSES: readonly DeviceClass[] = [
  // Chromium without a usable GPU (blocklisted driver, VM, WebGPU off): SwiftShader.
  { name: 'swiftshader', share: 0.15, kind: 'swiftshader' },
  // Headless `tabswarm peer` on a CPU server (Dawn + lavapipe).
  { name: 'lavapipe', share: 0.05, kind: 'lavapipe' },
  { name: 'integrated laptop (Iris Xe)', share: 0.45, kind: 'gpu', peakFlops: 2.1e12 },
  { name: 'mid desktop (RTX 3060)', share: 0.28, kind: 'gpu', peakFlops: 12.7e12 },
  { name: 'high-end (RTX 4090)', share: 0.07, kind: 'gpu', peakFlops: 82.6e12 },
];

/** Useful FLOP/s of lavapipe on 2 cores, from the measured reference run (whole model, forward + backward). */
export function lavapipeFlopsPerS(): number {
  const f = stageMicrobatchFlops(REFERENCE_MODEL, { layerStart: 0, layerEnd: REFERENCE_MODEL.n_layer }, REFERENCE_B, REFERENCE_MODEL.block_size);
  const perToken = Number(f.forward + f.backward) / (REFERENCE_B * REFERENCE_MODEL.block_size);
  return LAVAPIPE_REFERENCE_TOKENS_PER_S * perToken;
}

/** Tokens per second through ONE block of the scenario's model for a device of this class (no per-device spread). */
export function classTokensPerSec(c: DeviceClass, scenario: Pick<Scenario, 'model' | 'B'>): number {
  const tokens = scenario.B * scenario.model.block_size;
  const flops = layerFlops(scenario); // one block, one microbatch, forward + backward
  switch (c.kind) {
    case 'lavapipe':
      return (lavapipeFlopsPerS() * tokens) / flops;
    case 'swiftshader':
      return (SWIFTSHADER_OVER_LAVAPIPE * lavapipeFlopsPerS() * tokens) / flops;
    case 'gpu': {
      if (c.peakFlops === undefined) throw new Error(`device class ${c.name}: a GPU class needs peakFlops`);
      const seconds = flops / (c.peakFlops * GPU_EFFICIENCY) + LAUNCHES_PER_LAYER * LAUNCH_S;
      return tokens / seconds;
    }
  }
}

// ---- Home connections -------------------------------------------------------------------------------------------
// Typical residential access (medians; log-normal spread per peer), from Ookla's Speedtest Global Index and the
// FCC's Measuring Broadband America reports: fibre is near-symmetric, cable (DOCSIS 3.x) and DSL are strongly
// asymmetric, mobile (4G/5G home or hotspot) is slow up and high in latency. Shares are our assumption.
// rttMs is the round trip to another home peer: the access link's own RTT plus a wide-area path (median 30 ms,
// within a continent; WonderNetwork-style city-to-city ping tables).
export interface ConnectionClass {
  name: string;
  share: number;
  downMbit: number;
  upMbit: number;
  accessRttMs: number;
  sigma: number;
}

export const CONNECTION_CLASSES: readonly ConnectionClass[] = [
  { name: 'fibre', share: 0.35, downMbit: 300, upMbit: 150, accessRttMs: 8, sigma: 0.6 },
  { name: 'cable', share: 0.3, downMbit: 250, upMbit: 20, accessRttMs: 18, sigma: 0.5 },
  { name: 'dsl', share: 0.2, downMbit: 40, upMbit: 8, accessRttMs: 28, sigma: 0.5 },
  { name: 'mobile', share: 0.15, downMbit: 50, upMbit: 10, accessRttMs: 45, sigma: 0.8 },
];
export const WAN_RTT_MEDIAN_MS = 30;
export const WAN_RTT_SIGMA = 0.5;

// ---- Churn --------------------------------------------------------------------------------------------------------
// Each present peer departs as a Poisson process at churnPerHour per hour (so a fraction churnPerHour of the swarm
// leaves per hour). A departure is (our assumption for browser tabs):
//   never returns  30%  closed the tab or the laptop for good
//   minutes        30%  back after a log-normal delay, median 5 min (a suspended laptop, a lost Wi-Fi)
//   reload         40%  back in seconds: log-normal, median 8 s (page reload, WebGPU init, rejoin)
// Peers that never return are replaced: newcomers arrive as a Poisson process at peers x churnPerHour x 30% per
// hour over the whole run, so the expected swarm size stays `peers`. The initial peers open the page over the first
// INITIAL_JOIN_S seconds (uniform), not all in the same instant.
export const DEPARTURES = { never: 0.3, minutes: 0.3, reload: 0.4 } as const;
export const MINUTES_RETURN_MEDIAN_S = 300;
export const MINUTES_RETURN_SIGMA = 0.8;
export const RELOAD_MEDIAN_S = 8;
export const RELOAD_SIGMA = 0.4;
export const INITIAL_JOIN_S = 60;

function drawSessions(rng: Rng, joinAtS: number, churnPerHour: number, horizonS: number): PeerProfile['sessions'] {
  const sessions: PeerProfile['sessions'] = [];
  if (churnPerHour <= 0) return sessions;
  const meanStayS = 3600 / churnPerHour;
  let at = joinAtS;
  for (;;) {
    const leaveAtS = at + rng.exponential(meanStayS);
    if (leaveAtS >= horizonS) return sessions;
    const kind = rng.pick([
      { weight: DEPARTURES.never, value: 'never' as const },
      { weight: DEPARTURES.minutes, value: 'minutes' as const },
      { weight: DEPARTURES.reload, value: 'reload' as const },
    ]);
    const returnAfterS =
      kind === 'never'
        ? null
        : kind === 'minutes'
          ? rng.lognormal(MINUTES_RETURN_MEDIAN_S, MINUTES_RETURN_SIGMA)
          : rng.lognormal(RELOAD_MEDIAN_S, RELOAD_SIGMA);
    sessions.push({ leaveAtS, returnAfterS });
    if (returnAfterS === null) return sessions;
    at = leaveAtS + returnAfterS;
  }
}

const MBIT = 1e6 / 8;

/** The profile of one peer (device, connection, sessions); adversary decided by the caller. */
function drawPeer(rngs: PeerRngs, scenario: Scenario, joinAtS: number, adversary: boolean): PeerProfile {
  const device = rngs.devices.pick(DEVICE_CLASSES.map((c) => ({ weight: c.share, value: c })));
  const tokensPerSec = classTokensPerSec(device, scenario) * rngs.devices.lognormal(1, DEVICE_SIGMA);
  const conn = rngs.connections.pick(CONNECTION_CLASSES.map((c) => ({ weight: c.share, value: c })));
  return {
    id: rngs.ids.hexId(),
    tokensPerSec,
    upBytesPerSec: rngs.connections.lognormal(conn.upMbit * MBIT, conn.sigma),
    downBytesPerSec: rngs.connections.lognormal(conn.downMbit * MBIT, conn.sigma),
    rttMs: conn.accessRttMs + rngs.connections.lognormal(WAN_RTT_MEDIAN_MS, WAN_RTT_SIGMA),
    adversary,
    joinAtS,
    sessions: drawSessions(rngs.churn, joinAtS, scenario.churnPerHour, scenario.hours * 3600),
  };
}

interface PeerRngs {
  ids: Rng;
  devices: Rng;
  connections: Rng;
  churn: Rng;
  adversaries: Rng;
  joins: Rng;
}

/**
 * Every peer of the scenario: the `peers` initial ones (joining over the first INITIAL_JOIN_S seconds), then the
 * newcomers that replace departures for good, sorted by join time. Exactly round(adversaries x peers) of the initial
 * peers are adversaries (chosen by the seed); each newcomer is one with probability `adversaries`.
 */
export function drawProfiles(scenario: Scenario, rng: Rng): PeerProfile[] {
  // One stream per concern, forked up front, so e.g. a change to the churn model leaves devices and ids alone.
  const rngs: PeerRngs = {
    ids: rng.fork('ids'),
    devices: rng.fork('devices'),
    connections: rng.fork('connections'),
    churn: rng.fork('churn'),
    adversaries: rng.fork('adversaries'),
    joins: rng.fork('joins'),
  };
  const horizonS = scenario.hours * 3600;
  const nBad = Math.round(scenario.adversaries * scenario.peers);
  const bad = new Set(rngs.adversaries.shuffle(Array.from({ length: scenario.peers }, (_, i) => i)).slice(0, nBad));
  const out: PeerProfile[] = [];
  for (let i = 0; i < scenario.peers; i++) {
    const joinAtS = rngs.joins.uniform(0, Math.min(INITIAL_JOIN_S, horizonS));
    out.push(drawPeer(rngs, scenario, joinAtS, bad.has(i)));
  }
  const newcomersPerS = (scenario.peers * scenario.churnPerHour * DEPARTURES.never) / 3600;
  if (newcomersPerS > 0) {
    for (let at = rngs.joins.exponential(1 / newcomersPerS); at < horizonS; at += rngs.joins.exponential(1 / newcomersPerS)) {
      out.push(drawPeer(rngs, scenario, at, rngs.adversaries.chance(scenario.adversaries)));
    }
  }
  return out.sort((a, b) => a.joinAtS - b.joinAtS || (a.id < b.id ? -1 : 1));
}
