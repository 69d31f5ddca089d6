// Timing of causal attention forward/backward (median wall ms and process CPU ms per call + flush) at the reference
// config and a bigger one; GF/s from wall time. Run alone: `node bin/run-ts.mjs bench/attention-main.ts`.
import { attentionBackward, attentionForward, type AttentionDims } from '../src/gpu/ops/attention';
import type { Runtime } from '../src/gpu/runtime';

export interface AttentionBenchRow {
  config: string;
  forwardMs: number;
  backwardMs: number;
  /** Median process CPU ms (all threads; Node only, else NaN): steadier than wall time on a shared machine. */
  forwardCpuMs: number;
  backwardCpuMs: number;
  /** Useful (causal) FLOPs per second: forward 2 and backward 4 multiply-adds per (t, s <= t, d). */
  forwardGflops: number;
  backwardGflops: number;
}

const CONFIGS: AttentionDims[] = [
  { B: 12, T: 64, C: 128, NH: 4 },
  { B: 4, T: 256, C: 384, NH: 6 },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function cpuMs(): number {
  if (typeof process === 'undefined' || typeof process.cpuUsage !== 'function') return Number.NaN;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function time(rt: Runtime, fn: () => void, reps: number): Promise<{ wall: number; cpu: number }> {
  fn();
  await rt.flush(); // warm-up: compiles pipelines, creates bind groups
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const c0 = cpuMs();
    fn();
    await rt.flush();
    walls.push(performance.now() - t0);
    cpus.push(cpuMs() - c0);
  }
  return { wall: median(walls), cpu: median(cpus) };
}

export async function benchAttention(rt: Runtime, opts: { reps?: number; print?: boolean } = {}): Promise<{ attention: AttentionBenchRow[] }> {
  const reps = opts.reps ?? 9;
  const rows: AttentionBenchRow[] = [];
  for (const d of CONFIGS) {
    const { B, T, C, NH } = d;
    const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
    const qkv = rt.upload(rand(B * T * 3 * C), [B, T, 3 * C], 'qkv');
    const dout = rt.upload(rand(B * T * C), [B, T, C], 'dout');
    const out = rt.tensor([B, T, C], 'out');
    const att = rt.tensor([B, NH, T, T], 'att');
    const datt = rt.tensor([B, NH, T, T], 'datt');
    const dqkv = rt.tensor([B, T, 3 * C], 'dqkv');
    const fwd = await time(rt, () => attentionForward(rt, { out, att, qkv }, d), reps);
    const bwd = await time(rt, () => attentionBackward(rt, { dqkv, datt, dout, qkv, att }, d), reps);
    const forwardMs = fwd.wall;
    const backwardMs = bwd.wall;
    const macs = B * NH * ((T * (T + 1)) / 2) * (C / NH); // per (t, s <= t, d)
    rows.push({
      config: `B=${B} T=${T} C=${C} NH=${NH}`,
      forwardMs,
      backwardMs,
      forwardCpuMs: fwd.cpu,
      backwardCpuMs: bwd.cpu,
      forwardGflops: (2 * 2 * macs) / forwardMs / 1e6,
      backwardGflops: (4 * 2 * macs) / backwardMs / 1e6,
    });
    for (const t of [qkv, dout, out, att, datt, dqkv]) rt.release(t);
  }
  if (opts.print ?? true) {
    console.log(`attention (${rt.handle.report.key}), median of ${reps}`);
    console.log('config                     fwd ms  fwd cpu ms  fwd GF/s    bwd ms  bwd cpu ms  bwd GF/s');
    for (const r of rows) {
      console.log(
        `${r.config.padEnd(26)} ${r.forwardMs.toFixed(2).padStart(6)} ${r.forwardCpuMs.toFixed(1).padStart(11)} ${r.forwardGflops.toFixed(2).padStart(9)} ` +
          `${r.backwardMs.toFixed(2).padStart(9)} ${r.backwardCpuMs.toFixed(1).padStart(11)} ${r.backwardGflops.toFixed(2).padStart(9)}`,
      );
    }
  }
  return { attention: rows };
}
