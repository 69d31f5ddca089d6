// Matrix multiply (the engine's hot path) and bias backward. Shapes and the variant list: shaders/matmul.wgsl.
//   out[M, N] (= or +=) op(a)[M, K] @ op(b)[K, N] (+ bias[N])
// Variants: 'naive' and 'tiled' are hand-written in shaders/matmul.wgsl (the template is specialised per case:
// transposes, bias, accumulate); 'rb<R>x<C>' and 'rb<R>x<C>w<WX>[x<WY>]' are register-blocked kernels generated here
// per block shape and per case (plus which operands may be read as vec4). Both go through kernelVariants
// (src/gpu/kernel.ts), which caches one kernel, and so one pipeline, per variant. The autotuner (src/gpu/autotune.ts) times the
// variants per adapter and shape; `matmul()` uses its cached choice, else `defaultVariant()`.
import code from '../../../shaders/matmul.wgsl?raw';
import { kernelVariants, packParams, singleKernel, type Kernel } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';
import { textureRowsFit, type Texture2D } from '../texture';

/** A matmul problem: out[M, N] (= or +=) op(a)[M, K] @ op(b)[K, N] (+ bias). Keys the autotuner's choices. */
export interface MatmulCase {
  M: number;
  N: number;
  K: number;
  /** op(a) = a stored [M,K], or (transA) a stored [K,M] */
  transA?: boolean;
  /** op(b) = b stored [K,N], or (transB) b stored [N,K] */
  transB?: boolean;
  /** out += result (parameter gradients) instead of out = result */
  accumulate?: boolean;
  bias?: boolean;
  /** Also biasGrad[N] += the column sums of op(b) over k (plain b only): for dW += x^T @ dy it is the bias gradient,
   *  summed in biasBackward's order (bitwise its result) without a launch of its own. */
  biasGrad?: boolean;
}

/** A launch: the case plus its tensors (bias present means a bias tensor is added; biasGrad present means the
 *  column sums of b are accumulated into it). */
export interface MatmulArgs extends Omit<MatmulCase, 'bias' | 'biasGrad'> {
  out: Tensor;
  a: Tensor;
  b: Tensor;
  bias?: Tensor;
  biasGrad?: Tensor;
}

// ------------------------------------------------------------------------------------------- variants

/** A register-blocked block shape: each thread computes R rows x C columns (C a multiple of 4) of the output;
 *  a workgroup is WX x WY threads. WY = 1 makes every row index uniform across the workgroup, so A's loads are
 *  uniform (one load broadcast to the SIMD lanes on CPU adapters) and only B's loads differ per lane. */
export interface RegisterBlock {
  R: number;
  C: number;
  WX: number;
  WY: number;
  /** Share A through subgroup shuffles: each lane loads one row's vec4 and the block's R rows are shuffled out of
   *  lanes 0..R-1 (needs the device's 'subgroups' feature, subgroupMinSize >= R, WY = 1; applies where A is read
   *  as vec4: plain A with K % 4 == 0, or transposed A with M % 4 == 0, where lane l loads row group l % (R/4) at
   *  k + l / (R/4); other cases compile the plain register block). On lavapipe every buffer load costs ~5-10 ns per
   *  invocation whatever its width or uniformity, so cutting A's loads from R to 1 per 4 k nearly halves the time. */
  sg?: boolean;
  /** Read B through a 2D rgba32float texture (a copy made before each launch) instead of a storage buffer: on
   *  llvmpipe a texel fetch is one SIMD gather, a storage load at per-lane addresses a loop over the lanes. Applies
   *  where B is read as vec4 and its rows copy as they lie (textureRowsFit: plain B with N % 64 == 0, transposed B
   *  with K % 64 == 0) within the texture size limit; other cases compile the buffer register block. */
  tex?: boolean;
}

export const REGISTER_BLOCKS: Readonly<Record<string, RegisterBlock>> = {
  rb4x8: { R: 4, C: 8, WX: 8, WY: 8 },
  rb4x4w16: { R: 4, C: 4, WX: 16, WY: 1 },
  rb4x8w8: { R: 4, C: 8, WX: 8, WY: 1 },
  rb8x8w8: { R: 8, C: 8, WX: 8, WY: 1 },
  rb8x8w8sg: { R: 8, C: 8, WX: 8, WY: 1, sg: true },
  rb16x4w16sg: { R: 16, C: 4, WX: 16, WY: 1, sg: true },
  rb16x8w8sg: { R: 16, C: 8, WX: 8, WY: 1, sg: true },
  rb32x4w8sg: { R: 32, C: 4, WX: 8, WY: 1, sg: true },
  rb16x8w8sgtex: { R: 16, C: 8, WX: 8, WY: 1, sg: true, tex: true },
  rb32x4w8sgtex: { R: 32, C: 4, WX: 8, WY: 1, sg: true, tex: true },
};

export const MATMUL_VARIANTS: readonly string[] = ['naive', 'tiled', ...Object.keys(REGISTER_BLOCKS)];

/** Bump when the register-block generator below changes what a variant computes or how fast it runs. */
const MATMUL_GENERATOR_REVISION = 1;

/** FNV-1a (32-bit) of a string, as 8 hex digits. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** Version of the variant set: the WGSL source, the block shapes and the generator's revision. Persisted tuning
 *  results (src/gpu/tuning-cache.ts) carry it, so changed kernels are re-timed instead of trusted. */
export const MATMUL_KERNELS_VERSION = `g${MATMUL_GENERATOR_REVISION}-${fnv1a(code + JSON.stringify(REGISTER_BLOCKS))}`;

/** Whether this device can run the subgroup register blocks (they shuffle from lanes 0..7). */
export function subgroupsUsable(rt: Runtime): boolean {
  const info = rt.handle.adapter.info as GPUAdapterInfo & { subgroupMinSize?: number };
  return rt.device.features.has('subgroups' as GPUFeatureName) && (info?.subgroupMinSize ?? 0) >= 8;
}

/** Variants worth timing on this device (subgroup variants only where subgroups are enabled). */
export function availableVariants(rt: Runtime): string[] {
  return MATMUL_VARIANTS.filter((v) => !REGISTER_BLOCKS[v]?.sg || subgroupsUsable(rt));
}

/** Canonical key of a matmul shape/case, e.g. "768x384x128 tB bias acc". */
export function matmulShapeKey(s: MatmulCase): string {
  return `${s.M}x${s.N}x${s.K}${s.transA ? ' tA' : ''}${s.transB ? ' tB' : ''}${s.bias ? ' bias' : ''}${s.accumulate ? ' acc' : ''}${s.biasGrad ? ' bgrad' : ''}`;
}

/** Choice tables per adapter key (shape key -> variant), filled by the autotuner (src/gpu/autotune.ts). */
const choiceTables = new Map<string, Map<string, string>>();

export function matmulChoiceTable(rt: Runtime): Map<string, string> {
  const adapter = rt.handle.report.key;
  let t = choiceTables.get(adapter);
  if (!t) {
    t = new Map();
    choiceTables.set(adapter, t);
  }
  return t;
}

/** The heuristic choice when a shape was not tuned: register blocks on CPU adapters, tiles on real GPUs. */
export function defaultVariant(adapterKey: string, s: MatmulCase): string {
  if (adapterKey === 'lavapipe' || adapterKey === 'swiftshader') {
    // Measured (bench/matmul.ts, lavapipe): 8x8 blocks win once both sides fill them, 4x8 in 8x8-thread
    // workgroups wastes least at the vocabulary's 65.
    return s.M >= 128 && s.N >= 128 ? 'rb8x8w8' : 'rb4x8';
  }
  return s.M * s.N < 32 * 32 ? 'naive' : 'tiled';
}

export function chooseVariant(rt: Runtime, s: MatmulCase): string {
  const tuned = matmulChoiceTable(rt).get(matmulShapeKey(s));
  if (tuned) return tuned;
  const v = defaultVariant(rt.handle.report.key, s);
  if (v === 'rb8x8w8' && (s.transA ? s.M % 4 === 0 : s.K % 4 === 0) && subgroupsUsable(rt)) return 'rb16x4w16sg';
  return v;
}

// ------------------------------------------------------------------------------------------- kernels

interface Launchable {
  kernel: Kernel;
  /** workgroup counts for (M, N) */
  grid(M: number, N: number): [number, number];
  /** B is bound as a texture of this many texels x rows (a copy of b made before the launch), else null. */
  texB: { width: number; height: number } | null;
  /** The kernel accumulates biasGrad itself (register blocks); else the launcher adds a biasBackward launch. */
  fusesBiasGrad: boolean;
}

type Flags = { transA: boolean; transB: boolean; bias: boolean; accumulate: boolean };

function flagsOf(s: MatmulCase): Flags {
  return { transA: !!s.transA, transB: !!s.transB, bias: !!s.bias, accumulate: !!s.accumulate };
}

function caseName(variant: string, f: Flags & { biasGrad?: boolean }): string {
  return `matmul ${variant}${f.transA ? ' tA' : ''}${f.transB ? ' tB' : ''}${f.bias ? ' bias' : ''}${f.accumulate ? ' acc' : ''}${f.biasGrad ? ' bgrad' : ''}`;
}

// The hand-written variants: shaders/matmul.wgsl specialised per case (its TRANS_A / TRANS_B / HAS_BIAS / ACCUM knobs).
type FileVariant = Flags & { entry: 'matmul_naive' | 'matmul_tiled' };
const fileVariants = (entry: FileVariant['entry']) =>
  kernelVariants<FileVariant>({
    name: (v) => caseName(v.entry.slice(7), v),
    source: code,
    entry,
    defines: (v) => ({ TRANS_A: v.transA, TRANS_B: v.transB, HAS_BIAS: v.bias, ACCUM: v.accumulate }),
  });
const fileKernels = { matmul_naive: fileVariants('matmul_naive'), matmul_tiled: fileVariants('matmul_tiled') };

function fileKernel(entry: FileVariant['entry'], s: MatmulCase): Launchable {
  const tile = entry === 'matmul_naive' ? 16 : 64;
  return {
    kernel: fileKernels[entry]({ ...flagsOf(s), entry }),
    grid: (M, N) => [Math.ceil(N / tile), Math.ceil(M / tile)],
    texB: null,
    fusesBiasGrad: false,
  };
}

/** Which operands a register-blocked kernel may read as vec4 for this shape (row starts must be 16-byte aligned). */
function vecFlags(s: MatmulCase, blk: RegisterBlock): { vecA: boolean; vecB: boolean; vecOut: boolean } {
  return {
    vecA: s.transA ? s.M % 4 === 0 && blk.R % 4 === 0 : s.K % 4 === 0,
    vecB: s.transB ? s.K % 4 === 0 : s.N % 4 === 0,
    vecOut: s.N % 4 === 0,
  };
}

// The register-blocked variants: generated source per block shape and case.
const rbKernels = kernelVariants<RbCodeOptions & { variant: string }>({
  name: (v) => caseName(v.variant, v),
  source: registerBlockedWgsl,
  entry: 'matmul_rb',
});

/** B's texture (texels x rows) where a texture block applies to this case on this device, else null. */
function textureOfB(s: MatmulCase, vecB: boolean, maxDim: number): { width: number; height: number } | null {
  const rowFloats = s.transB ? s.K : s.N;
  const rows = s.transB ? s.N : s.K;
  if (!vecB || !textureRowsFit(rowFloats) || rowFloats / 4 > maxDim || rows > maxDim || rows < 1) return null;
  return { width: rowFloats / 4, height: rows };
}

function rbKernel(name: string, blk: RegisterBlock, s: MatmulCase, subgroups: boolean, maxTextureDim: number): Launchable {
  const f = flagsOf(s);
  const v = vecFlags(s, blk);
  const sg = !!blk.sg && subgroups && v.vecA && blk.WY === 1 && blk.R % 8 === 0;
  const texB = blk.tex ? textureOfB(s, v.vecB, maxTextureDim) : null;
  return {
    kernel: rbKernels({ ...blk, ...f, ...v, sg, tex: texB !== null, biasGrad: !!s.biasGrad, variant: name }),
    grid: (M, N) => [Math.ceil(N / (blk.C * blk.WX)), Math.ceil(M / (blk.R * blk.WY))],
    texB,
    fusesBiasGrad: true,
  };
}

/** The kernel for a variant and case. Subgroup variants fall back to their plain register block where the device
 *  lacks subgroups, texture variants to their buffer block where the case has no texture layout or no runtime is
 *  given (so every variant runs everywhere; availableVariants() says which are worth timing). */
export function variantKernel(variant: string, s: MatmulCase, rt?: Runtime): Launchable {
  if (variant === 'naive') return fileKernel('matmul_naive', s);
  if (variant === 'tiled') return fileKernel('matmul_tiled', s);
  const blk = REGISTER_BLOCKS[variant];
  if (!blk) throw new Error(`matmul: unknown variant ${variant} (known: ${MATMUL_VARIANTS.join(', ')})`);
  return rbKernel(variant, blk, s, !!blk.sg && !!rt && subgroupsUsable(rt), rt ? rt.device.limits.maxTextureDimension2D : 0);
}

// ------------------------------------------------------------------------------------------- launcher

/** M, N and K are sizes a kernel can index with u32 (shared with the f16 matmul). */
export function checkMatmulSizes(op: string, s: Pick<MatmulCase, 'M' | 'N' | 'K'>): void {
  for (const [w, d] of [
    ['M', s.M],
    ['N', s.N],
    ['K', s.K],
  ] as const) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) throw new Error(`${op}: ${w} = ${d} is not a valid size`);
  }
}

function checkArgs(args: MatmulArgs): void {
  const { M, N, K } = args;
  checkMatmulSizes('matmul', args);
  expectSize('matmul', args.transA ? 'a [K,M]' : 'a [M,K]', args.a, M * K);
  expectSize('matmul', args.transB ? 'b [N,K]' : 'b [K,N]', args.b, K * N);
  expectSize('matmul', 'out [M,N]', args.out, M * N);
  if (args.bias) expectSize('matmul', 'bias [N]', args.bias, N);
  if (args.biasGrad) {
    if (args.transB) throw new Error('matmul: biasGrad sums the columns of b stored [K, N] (not with transB)');
    expectSize('matmul', 'biasGrad [N]', args.biasGrad, N);
  }
}

/** B's textures per runtime and size: one per size, reused by every launch of that size (launches run in order). */
const operandTextures = new WeakMap<Runtime, Map<string, Texture2D>>();

function operandTexture(rt: Runtime, width: number, height: number): Texture2D {
  let m = operandTextures.get(rt);
  if (!m) {
    m = new Map();
    operandTextures.set(rt, m);
  }
  const key = `${width}x${height}`;
  let t = m.get(key);
  if (!t) {
    t = rt.texture2d(width, height, `matmul b ${key}`);
    m.set(key, t);
  }
  return t;
}

/** Launches one variant explicitly (tests, autotuner, benchmark). */
export function matmulWith(rt: Runtime, variant: string, args: MatmulArgs): void {
  checkArgs(args);
  const { M, N, K } = args;
  if (M === 0 || N === 0) return;
  const s: MatmulCase = {
    M,
    N,
    K,
    transA: args.transA,
    transB: args.transB,
    accumulate: args.accumulate,
    bias: !!args.bias,
    biasGrad: !!args.biasGrad,
  };
  const l = variantKernel(variant, s, rt);
  let b: Tensor | Texture2D = args.b;
  if (l.texB) {
    b = operandTexture(rt, l.texB.width, l.texB.height);
    rt.copyToTexture(args.b, b);
  }
  const buffers: Record<string, Tensor | Texture2D> = args.bias ? { a: args.a, b, bias: args.bias, out: args.out } : { a: args.a, b, out: args.out };
  if (args.biasGrad && l.fusesBiasGrad) buffers.dbias = args.biasGrad;
  rt.launch(
    l.kernel,
    buffers,
    l.grid(M, N),
    packParams([
      ['u32', M],
      ['u32', N],
      ['u32', K],
    ]),
  );
  if (args.biasGrad && !l.fusesBiasGrad) biasBackward(rt, args.biasGrad, args.b, K, N);
}

/** out[M,N] (= or +=) op(a)[M,K] @ op(b)[K,N] (+ bias[N] broadcast over rows); biasGrad[N] += column sums of b. */
export function matmul(rt: Runtime, args: MatmulArgs): void {
  const s: MatmulCase = {
    M: args.M,
    N: args.N,
    K: args.K,
    transA: args.transA,
    transB: args.transB,
    accumulate: args.accumulate,
    bias: !!args.bias,
    biasGrad: !!args.biasGrad,
  };
  matmulWith(rt, chooseVariant(rt, s), args);
}

const biasBackwardKernel = singleKernel('bias_backward', code, 'bias_backward');

/** dbias[N] += sum over rows m of dout[m, n]   (dout: [M, N]); deterministic fixed-order sum. */
export function biasBackward(rt: Runtime, dbias: Tensor, dout: Tensor, M: number, N: number): void {
  expectSize('bias_backward', 'dout [M,N]', dout, M * N);
  expectSize('bias_backward', 'dbias [N]', dbias, N);
  rt.launch(
    biasBackwardKernel,
    { dout, dbias },
    [Math.ceil(N / 64)],
    packParams([
      ['u32', M],
      ['u32', N],
      ['u32', 0],
    ]),
  );
}

// ------------------------------------------------------------------------------------------- code generation

export interface RbCodeOptions extends RegisterBlock {
  transA: boolean;
  transB: boolean;
  bias: boolean;
  accumulate: boolean;
  /** A bound as vec4: plain A needs K % 4 == 0 (vec4 along k); transposed A needs M % 4 == 0 and R % 4 == 0. */
  vecA: boolean;
  /** B bound as vec4: plain B needs N % 4 == 0 (vec4 along n); transposed B needs K % 4 == 0 (along k). */
  vecB: boolean;
  /** out (and bias) bound as vec4: needs N % 4 == 0. */
  vecOut: boolean;
  /** A rows shared by subgroup shuffles (only with vecA, WY = 1, subgroup size >= R). */
  sg?: boolean;
  /** B bound as a texture_2d<f32> of B's rows, 4 floats per texel (only with vecB). */
  tex?: boolean;
  /** Also dbias[N] += column sums of op(b) (plain b), stored by the threads of the first row block. */
  biasGrad?: boolean;
}

/**
 * WGSL for one register-blocked case. Thread (lx, ly) of workgroup (wx, wy) owns rows row0 + r (r < R) and columns
 * col0 + c (c < C), row0 = (wy*WY + ly)*R, col0 = (wx*WX + lx)*C. K runs in steps of 4 (loads as vec4 where the
 * layout allows), then a scalar tail. Row/column indices are clamped into range for loads (those lanes compute
 * garbage that is never stored), so nothing is read outside a binding; k never leaves [0, K).
 */
export function registerBlockedWgsl(o: RbCodeOptions): string {
  const { R, C, WX, WY } = o;
  if (C % 4 !== 0) throw new Error(`matmul rb: C = ${C} must be a multiple of 4`);
  const G = C / 4; // vec4 column groups per thread
  const L: string[] = [];
  const ta = o.vecA ? 'vec4f' : 'f32';
  const tb = o.vecB ? 'vec4f' : 'f32';
  const to = o.vecOut ? 'vec4f' : 'f32';
  const sg = !!o.sg && o.vecA && WY === 1 && R % 8 === 0;
  if (sg) L.push('enable subgroups;');
  L.push(`// generated by registerBlockedWgsl (src/gpu/ops/matmul.ts): ${JSON.stringify(o)}`);
  L.push('struct Params { M: u32, N: u32, K: u32 }');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push(`@group(0) @binding(1) var<storage, read> a: array<${ta}>;`);
  const tex = !!o.tex && o.vecB;
  L.push(tex ? '@group(0) @binding(2) var b: texture_2d<f32>;' : `@group(0) @binding(2) var<storage, read> b: array<${tb}>;`);
  if (o.bias) L.push(`@group(0) @binding(3) var<storage, read> bias: array<${to}>;`);
  L.push(`@group(0) @binding(${o.bias ? 4 : 3}) var<storage, read_write> out: array<${to}>;`);
  const bgrad = !!o.biasGrad && !o.transB;
  if (bgrad) L.push(`@group(0) @binding(${o.bias ? 5 : 4}) var<storage, read_write> dbias: array<${to}>;`);
  L.push(`@compute @workgroup_size(${WX}, ${WY})`);
  L.push(
    `fn matmul_rb(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u${sg ? ', @builtin(subgroup_invocation_id) lane: u32' : ''}) {`,
  );
  L.push('  let M = p.M; let N = p.N; let K = p.K;');
  L.push(WY === 1 ? `  let row0 = wg.y * ${R}u;` : `  let row0 = (wg.y * ${WY}u + lid.y) * ${R}u;`);
  L.push(`  let col0 = (wg.x * ${WX}u + lid.x) * ${C}u;`);

  // Scalar element access to an operand that may be bound as vec4.
  const elemA = (i: string) => (o.vecA ? `a[(${i}) >> 2u][(${i}) & 3u]` : `a[${i}]`);
  const elemB = (i: string) => (o.vecB ? `b[(${i}) >> 2u][(${i}) & 3u]` : `b[${i}]`);

  // Precomputed (clamped) base indices.
  const GA = R / 4; // vec4 row groups (transposed A)
  // Subgroup sharing: the R items of A per 4 k (plain: row t's vec4 over k..k+3; transposed: row group t % GA at
  // step t / GA) are spread over lanes 0..7: lane l loads items i*8 + (l % 8), i < R/8; item t comes from lane t % 8.
  const NI = R / 8;
  if (sg && !o.transA) {
    for (let i = 0; i < NI; i++) L.push(`  let abl${i} = min(row0 + ${i * 8}u + lane % 8u, M - 1u) * (K >> 2u);`);
  } else if (!o.transA) {
    for (let r = 0; r < R; r++) L.push(`  let ab${r} = min(row0 + ${r}u, M - 1u) * ${o.vecA ? '(K >> 2u)' : 'K'};`);
  } else if (o.vecA) {
    for (let g = 0; g < R / 4; g++) L.push(`  let ag${g} = min((row0 >> 2u) + ${g}u, (M >> 2u) - 1u);`);
    if (sg) {
      for (let i = 0; i < NI; i++) {
        L.push(`  let at${i} = ${i * 8}u + lane % 8u;`);
        L.push(`  let agl${i} = min((row0 >> 2u) + at${i} % ${GA}u, (M >> 2u) - 1u);`);
        L.push(`  let aul${i} = at${i} / ${GA}u;`);
      }
    }
  } else {
    for (let r = 0; r < R; r++) L.push(`  let ar${r} = min(row0 + ${r}u, M - 1u);`);
  }
  if (o.transB && tex) {
    for (let c = 0; c < C; c++) L.push(`  let bn${c} = min(col0 + ${c}u, N - 1u);`);
  } else if (o.transB) {
    for (let c = 0; c < C; c++) L.push(`  let bb${c} = min(col0 + ${c}u, N - 1u) * ${o.vecB ? '(K >> 2u)' : 'K'};`);
  } else if (o.vecB) {
    for (let g = 0; g < G; g++) L.push(`  let bg${g} = min((col0 >> 2u) + ${g}u, (N >> 2u) - 1u);`);
  } else {
    for (let c = 0; c < C; c++) L.push(`  let bc${c} = min(col0 + ${c}u, N - 1u);`);
  }
  for (let r = 0; r < R; r++) for (let g = 0; g < G; g++) L.push(`  var acc${r}_${g} = vec4f(0.0);`);
  // Column sums of B (bias gradient), k ascending from 0: biasBackward's order.
  if (bgrad) for (let g = 0; g < G; g++) L.push(`  var bs${g} = vec4f(0.0);`);

  // Emits the loads and FMAs for `steps` consecutive k (k, k+1, ...), as expressions av(r,u) and bv(u,g).
  const body = (steps: number, ind: string): void => {
    const aval: string[][] = []; // [r][u]
    const bvec: string[][] = []; // [u][g] vec4 expressions
    // ---- A
    if (sg && o.transA && steps === 4) {
      // lane l holds row group (l % GA) at k + (l / GA) % 4; (group g, step u) comes from lane u * GA + g
      for (let i = 0; i < NI; i++) L.push(`${ind}let val${i} = a[(k + aul${i}) * (M >> 2u) + agl${i}];`);
      for (let r = 0; r < R; r++) aval.push([]);
      for (let u = 0; u < 4; u++) {
        for (let g = 0; g < GA; g++) {
          const t = u * GA + g;
          L.push(`${ind}let va${g}_${u} = subgroupShuffle(val${Math.floor(t / 8)}, ${t % 8}u);`);
          for (let j = 0; j < 4; j++) aval[g * 4 + j].push(`va${g}_${u}[${j}]`);
        }
      }
    } else if (sg && !o.transA && steps === 4) {
      for (let i = 0; i < NI; i++) L.push(`${ind}let val${i} = a[abl${i} + (k >> 2u)];`);
      for (let r = 0; r < R; r++) {
        L.push(`${ind}let va${r} = subgroupShuffle(val${Math.floor(r / 8)}, ${r % 8}u);`);
        aval.push([0, 1, 2, 3].map((u) => `va${r}[${u}]`));
      }
    } else if (sg && !o.transA) {
      // tail (never runs: K % 4 == 0 here) still has to compile
      for (let r = 0; r < R; r++) aval.push([`0.0`]);
    } else if (!o.transA) {
      for (let r = 0; r < R; r++) {
        aval.push([]);
        if (o.vecA && steps === 4) {
          L.push(`${ind}let va${r} = a[ab${r} + (k >> 2u)];`);
          for (let u = 0; u < 4; u++) aval[r].push(`va${r}[${u}]`);
        } else {
          for (let u = 0; u < steps; u++) {
            L.push(`${ind}let a${r}_${u} = ${o.vecA ? elemA(`(ab${r} << 2u) + k + ${u}u`) : `a[ab${r} + k + ${u}u]`};`);
            aval[r].push(`a${r}_${u}`);
          }
        }
      }
    } else {
      for (let r = 0; r < R; r++) aval.push([]);
      for (let u = 0; u < steps; u++) {
        if (o.vecA) {
          for (let g = 0; g < R / 4; g++) {
            L.push(`${ind}let va${g}_${u} = a[(k + ${u}u) * (M >> 2u) + ag${g}];`);
            for (let j = 0; j < 4; j++) aval[g * 4 + j].push(`va${g}_${u}[${j}]`);
          }
        } else {
          for (let r = 0; r < R; r++) {
            L.push(`${ind}let a${r}_${u} = a[(k + ${u}u) * M + ar${r}];`);
            aval[r].push(`a${r}_${u}`);
          }
        }
      }
    }
    // ---- B
    if (!o.transB) {
      for (let u = 0; u < steps; u++) {
        bvec.push([]);
        for (let g = 0; g < G; g++) {
          if (tex) {
            L.push(`${ind}let vb${u}_${g} = textureLoad(b, vec2u(bg${g}, k + ${u}u), 0);`);
          } else if (o.vecB) {
            L.push(`${ind}let vb${u}_${g} = b[(k + ${u}u) * (N >> 2u) + bg${g}];`);
          } else {
            const comps = [0, 1, 2, 3].map((j) => `b[(k + ${u}u) * N + bc${g * 4 + j}]`);
            L.push(`${ind}let vb${u}_${g} = vec4f(${comps.join(', ')});`);
          }
          bvec[u].push(`vb${u}_${g}`);
        }
      }
    } else {
      const bval: string[][] = []; // [c][u]
      for (let c = 0; c < C; c++) {
        bval.push([]);
        if (tex && steps === 4) {
          L.push(`${ind}let wb${c} = textureLoad(b, vec2u(k >> 2u, bn${c}), 0);`);
          for (let u = 0; u < 4; u++) bval[c].push(`wb${c}[${u}]`);
        } else if (tex) {
          for (let u = 0; u < steps; u++) {
            L.push(`${ind}let b${c}_${u} = textureLoad(b, vec2u((k + ${u}u) >> 2u, bn${c}), 0)[(k + ${u}u) & 3u];`);
            bval[c].push(`b${c}_${u}`);
          }
        } else if (o.vecB && steps === 4) {
          L.push(`${ind}let wb${c} = b[bb${c} + (k >> 2u)];`);
          for (let u = 0; u < 4; u++) bval[c].push(`wb${c}[${u}]`);
        } else {
          for (let u = 0; u < steps; u++) {
            L.push(`${ind}let b${c}_${u} = ${o.vecB ? elemB(`(bb${c} << 2u) + k + ${u}u`) : `b[bb${c} + k + ${u}u]`};`);
            bval[c].push(`b${c}_${u}`);
          }
        }
      }
      for (let u = 0; u < steps; u++) {
        bvec.push([]);
        for (let g = 0; g < G; g++) bvec[u].push(`vec4f(${[0, 1, 2, 3].map((j) => bval[g * 4 + j][u]).join(', ')})`);
      }
    }
    // ---- FMAs, k ascending per accumulator (fixed order)
    for (let u = 0; u < steps; u++) {
      if (bgrad) for (let g = 0; g < G; g++) L.push(`${ind}bs${g} = bs${g} + ${bvec[u][g]};`);
      for (let r = 0; r < R; r++) {
        for (let g = 0; g < G; g++) L.push(`${ind}acc${r}_${g} = fma(vec4f(${aval[r][u]}), ${bvec[u][g]}, acc${r}_${g});`);
      }
    }
  };

  // Unroll k by 4 only where a vec4 load along k needs it: big unrolled bodies cost llvmpipe seconds of compile.
  const alongK = (!o.transA && o.vecA) || (o.transB && o.vecB) || sg;
  L.push('  var k = 0u;');
  if (alongK) {
    L.push('  for (; k + 4u <= K; k += 4u) {');
    body(4, '    ');
    L.push('  }');
  }
  L.push('  for (; k < K; k++) {');
  body(1, '    ');
  L.push('  }');

  // ---- stores
  for (let r = 0; r < R; r++) {
    L.push(`  if (row0 + ${r}u < M) {`);
    L.push(`    let ro${r} = (row0 + ${r}u) * ${o.vecOut ? '(N >> 2u)' : 'N'};`);
    for (let g = 0; g < G; g++) {
      if (o.vecOut) {
        L.push(`    if ((col0 >> 2u) + ${g}u < (N >> 2u)) {`);
        L.push(`      let i = ro${r} + (col0 >> 2u) + ${g}u;`);
        let e = `acc${r}_${g}`;
        if (o.bias) e += ` + bias[(col0 >> 2u) + ${g}u]`;
        if (o.accumulate) e += ' + out[i]';
        L.push(`      out[i] = ${e};`);
        L.push('    }');
      } else {
        for (let j = 0; j < 4; j++) {
          const c = g * 4 + j;
          L.push(`    if (col0 + ${c}u < N) {`);
          L.push(`      let i = ro${r} + col0 + ${c}u;`);
          let e = `acc${r}_${g}[${j}]`;
          if (o.bias) e += ` + bias[col0 + ${c}u]`;
          if (o.accumulate) e += ' + out[i]';
          L.push(`      out[i] = ${e};`);
          L.push('    }');
        }
      }
    }
    L.push('  }');
  }
  if (bgrad) {
    // One thread row (the first row block's) stores the column sums.
    L.push('  if (row0 == 0u) {');
    for (let g = 0; g < G; g++) {
      if (o.vecOut) {
        L.push(`    if ((col0 >> 2u) + ${g}u < (N >> 2u)) {`);
        L.push(`      let i = (col0 >> 2u) + ${g}u;`);
        L.push(`      dbias[i] = dbias[i] + bs${g};`);
        L.push('    }');
      } else {
        for (let j = 0; j < 4; j++) {
          L.push(`    if (col0 + ${g * 4 + j}u < N) { dbias[col0 + ${g * 4 + j}u] = dbias[col0 + ${g * 4 + j}u] + bs${g}[${j}]; }`);
        }
      }
    }
    L.push('  }');
  }
  L.push('}');
  return L.join('\n');
}
