// Matmul benchmark: GFLOP/s per variant at the model's shapes and 512/1024 square, side by side with
// @tensorflow/tfjs-backend-webgpu's matMul on the same GPUDevice in the same run, plus the autotuner's choice.
// Times are wall clock from recording to the GPU finishing (median of `reps` after a warm-up), for both sides
// measured the same way (see timeGpu in src/gpu/autotune.ts).
import { matmulChoices, matmulOperands, median, timeGpu, tuneMatmul, type MatmulShape } from '../src/gpu/autotune';
import { availableVariants, chooseVariant, matmulShapeKey, matmulWith, variantKernel } from '../src/gpu/ops/matmul';
import type { Runtime } from '../src/gpu/runtime';

export interface MatmulBenchOptions {
  reps?: number;
  shapes?: Array<MatmulShape & { label?: string }>;
  variants?: readonly string[];
  /** compare with tfjs-webgpu (default true) */
  tfjs?: boolean;
  log?: (s: string) => void;
}

export interface MatmulBenchRow {
  label: string;
  shape: string;
  gflops: Record<string, number>;
  best: string;
  bestGflops: number;
  tfjsGflops: number | null;
  ratio: number | null;
  tuned: string;
}

/** The model's matmuls at the reference config (B=12, T=64 -> 768 tokens, C=128, V=65) plus squares. */
export function modelShapes(Ntok = 768, C = 128, V = 65): Array<MatmulShape & { label: string }> {
  const linears: Array<[string, number, number]> = [
    ['attn.c_attn', C, 3 * C],
    ['attn.c_proj', C, C],
    ['mlp.c_fc', C, 4 * C],
    ['mlp.c_proj', 4 * C, C],
  ];
  const out: Array<MatmulShape & { label: string }> = [];
  for (const [name, IN, OUT] of linears) {
    out.push({ label: `${name} fwd`, M: Ntok, N: OUT, K: IN, bias: true });
    out.push({ label: `${name} dinp`, M: Ntok, N: IN, K: OUT, transB: true });
    out.push({ label: `${name} dW`, M: IN, N: OUT, K: Ntok, transA: true, accumulate: true });
  }
  out.push({ label: 'lm_head fwd', M: Ntok, N: V, K: C, transB: true });
  out.push({ label: 'lm_head dx', M: Ntok, N: C, K: V });
  out.push({ label: 'lm_head dwte', M: V, N: C, K: Ntok, transA: true, accumulate: true });
  out.push({ label: 'square 512', M: 512, N: 512, K: 512 });
  out.push({ label: 'square 1024', M: 1024, N: 1024, K: 1024 });
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Tfjs {
  time(s: MatmulShape, reps: number): Promise<number>;
  name: string;
}

/** tfjs-core + tfjs-backend-webgpu on our own GPUDevice (same adapter, same process). */
async function startTfjs(rt: Runtime): Promise<Tfjs> {
  // tfjs-webgpu refuses to construct unless navigator.gpu exists (Node 20 has no navigator). We hand it our own
  // device, so navigator.gpu is only sniffed: in Node it is Dawn's GPU object from nodeGpu().
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    const gpu =
      typeof process !== 'undefined' && process.versions?.node
        ? (await (await import('../src/gpu/node-gpu')).nodeGpu({ quiet: true })).gpu
        : undefined;
    if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true, writable: true });
    else if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  }
  const tf = await import('@tensorflow/tfjs-core');
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  // tfjs's kernels are registered for the backend name 'webgpu': replace that backend's factory with one that
  // wraps our device (the package's own factory would request a second device).
  const name = 'webgpu';
  tf.removeBackend(name);
  tf.registerBackend(name, () => new WebGPUBackend(rt.device, rt.handle.adapter.info));
  await tf.setBackend(name);
  await tf.ready();
  const backend = tf.backend() as unknown as { submitQueue(): void; endComputePassEncoder(): void };
  const fill = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
  return {
    name: `tfjs-core ${tf.version_core} webgpu`,
    async time(s, reps) {
      const a = tf.tensor2d(fill(s.M * s.K), s.transA ? [s.K, s.M] : [s.M, s.K]);
      const b = tf.tensor2d(fill(s.K * s.N), s.transB ? [s.N, s.K] : [s.K, s.N]);
      const bias = s.bias ? tf.tensor1d(fill(s.N)) : undefined;
      const op = () =>
        bias ? tf.fused.matMul({ a, b, transposeA: !!s.transA, transposeB: !!s.transB, bias }) : tf.matMul(a, b, !!s.transA, !!s.transB);
      // warm-up (compiles tfjs's program for this shape) and a correctness touch
      const w = op();
      await w.data();
      w.dispose();
      const times: number[] = [];
      let best = Infinity;
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        const c = op();
        backend.endComputePassEncoder();
        backend.submitQueue();
        if (best > 4 && best < Infinity) await sleep(best * 0.8);
        await rt.device.queue.onSubmittedWorkDone();
        const t = performance.now() - t0;
        times.push(t);
        best = Math.min(best, t);
        c.dispose();
      }
      a.dispose();
      b.dispose();
      bias?.dispose();
      return median(times);
    },
  };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export async function benchMatmul(
  rt: Runtime,
  opts: MatmulBenchOptions = {},
): Promise<{
  adapter: string;
  tfjs: string | null;
  reps: number;
  rows: MatmulBenchRow[];
  tuning: ReturnType<typeof matmulChoices>;
}> {
  const reps = opts.reps ?? 5;
  const log = opts.log ?? ((s: string) => console.log(s));
  const shapes = opts.shapes ?? modelShapes();
  const variants = opts.variants ?? availableVariants(rt);

  log(`[bench matmul] adapter ${rt.handle.report.key}; tuning ${shapes.length} shapes...`);
  await tuneMatmul(rt, shapes, { reps: 3 });

  let tfjs: Tfjs | null = null;
  if (opts.tfjs !== false) {
    try {
      tfjs = await startTfjs(rt);
    } catch (e) {
      log(`[bench matmul] tfjs-webgpu unavailable: ${(e as Error).message}`);
    }
  }

  const rows: MatmulBenchRow[] = [];
  for (const s of shapes) {
    const flops = 2 * s.M * s.N * s.K;
    const gf = (ms: number) => flops / ms / 1e6;
    const { args, tensors } = matmulOperands(rt, s);
    const gflops: Record<string, number> = {};
    // fastest-first, so clearly slower variants are timed once (warm-up only) instead of `reps` times
    const order = [chooseVariant(rt, s), ...variants.filter((v) => v !== chooseVariant(rt, s))];
    let bestMs = Infinity;
    let best = '';
    for (const v of order) {
      await rt.prepare(variantKernel(v, s, rt).kernel);
      const t0 = performance.now();
      matmulWith(rt, v, args);
      await rt.flush();
      const warm = performance.now() - t0;
      const ms = warm > 4 * bestMs ? warm : median(await timeGpu(rt, () => matmulWith(rt, v, args), reps));
      gflops[v] = gf(ms);
      if (ms < bestMs) {
        bestMs = ms;
        best = v;
      }
    }
    for (const t of tensors) rt.release(t);
    let tfjsGflops: number | null = null;
    if (tfjs) {
      try {
        tfjsGflops = gf(await tfjs.time(s, reps));
      } catch (e) {
        log(`[bench matmul] tfjs failed on ${matmulShapeKey(s)}: ${(e as Error).message}`);
      }
    }
    const row: MatmulBenchRow = {
      label: s.label ?? matmulShapeKey(s),
      shape: matmulShapeKey(s),
      gflops,
      best,
      bestGflops: gf(bestMs),
      tfjsGflops,
      ratio: tfjsGflops ? gf(bestMs) / tfjsGflops : null,
      tuned: chooseVariant(rt, s),
    };
    rows.push(row);
    log(
      `  ${pad(row.label, 18)} ${pad(row.shape, 26)} best ${row.best} ${row.bestGflops.toFixed(2)} GFLOP/s` +
        (tfjsGflops ? `, tfjs ${tfjsGflops.toFixed(2)}, ratio ${row.ratio!.toFixed(2)}` : ''),
    );
  }

  // table
  const head = ['shape', 'M x N x K flags', ...variants, 'tfjs', 'best/tfjs', 'tuned'];
  const widths = [18, 26, ...variants.map((v) => Math.max(8, v.length)), 7, 9, 10];
  log('');
  log(`GFLOP/s, median of ${reps} (after warm-up; '~' = one timed warm-up run, clearly slower), adapter ${rt.handle.report.key}`);
  log(head.map((h, i) => pad(h, widths[i])).join(' '));
  for (const r of rows) {
    const cells = [
      r.label,
      r.shape,
      ...variants.map((v) => (r.gflops[v] === undefined ? '-' : r.gflops[v].toFixed(2))),
      r.tfjsGflops === null ? '-' : r.tfjsGflops.toFixed(2),
      r.ratio === null ? '-' : r.ratio.toFixed(2),
      r.tuned,
    ];
    log(cells.map((c, i) => pad(c, widths[i])).join(' '));
  }
  return { adapter: rt.handle.report.key, tfjs: tfjs?.name ?? null, reps, rows, tuning: matmulChoices(rt) };
}
