// Timing of causal attention forward/backward (median wall ms per launch + flush) at the reference config and a
// bigger one. Run alone: `node bin/run-ts.mjs bench/attention-main.ts`.
import { attentionBackward, attentionForward, type AttentionDims } from '../src/gpu/ops/attention';
import type { Runtime } from '../src/gpu/runtime';

export interface AttentionBenchRow {
  config: string;
  forwardMs: number;
  backwardMs: number;
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

async function time(rt: Runtime, fn: () => void, reps: number): Promise<number> {
  fn();
  await rt.flush(); // warm-up: compiles pipelines, creates bind groups
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    await rt.flush();
    times.push(performance.now() - t0);
  }
  return median(times);
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
    const forwardMs = await time(rt, () => attentionForward(rt, { out, att, qkv }, d), reps);
    const backwardMs = await time(rt, () => attentionBackward(rt, { dqkv, datt, dout, qkv, att }, d), reps);
    const macs = B * NH * ((T * (T + 1)) / 2) * (C / NH); // per (t, s <= t, d)
    rows.push({
      config: `B=${B} T=${T} C=${C} NH=${NH}`,
      forwardMs,
      backwardMs,
      forwardGflops: (2 * 2 * macs) / forwardMs / 1e6,
      backwardGflops: (4 * 2 * macs) / backwardMs / 1e6,
    });
    for (const t of [qkv, dout, out, att, datt, dqkv]) rt.release(t);
  }
  if (opts.print ?? true) {
    console.log(`attention (${rt.handle.report.key}), median of ${reps}`);
    console.log('config                     fwd ms   fwd GF/s   bwd ms   bwd GF/s');
    for (const r of rows) {
      console.log(
        `${r.config.padEnd(26)} ${r.forwardMs.toFixed(2).padStart(6)} ${r.forwardGflops.toFixed(2).padStart(10)} ` +
          `${r.backwardMs.toFixed(2).padStart(8)} ${r.backwardGflops.toFixed(2).padStart(10)}`,
      );
    }
  }
  return { attention: rows };
}
