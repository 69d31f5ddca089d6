// GPT-2 encoder (token + learned position embedding), forward and backward.
// Shapes: tokens u32 [B*T]; wte [V, C]; wpe [maxT, C] (maxT >= T); out/dout [B, T, C].
// The backward scatter into dwte uses a host-built CSR index (TokenIndex), so it needs no atomics, runs in a fixed
// order (bitwise deterministic) and costs O(B*T*C) whatever V is. C % 4 == 0 takes the vec4 variant of each kernel.
// A wte/dwte over one storage binding (GPT-2 small's 50257 x 768 f32 is 154 MB, lavapipe and Chromium bind 128 MiB)
// is split by vocabulary into aligned row ranges (src/gpu/chunks.ts), one launch per range; every row's value is
// computed by the same thread arithmetic either way, so the split results are bitwise the single launch's.
import code from '../../../shaders/encoder.wgsl?raw';
import { bindingRanges } from '../chunks';
import { kernelVariants, packParams } from '../kernel';
import type { Runtime } from '../runtime';
import { expectSize, type Tensor } from '../tensor';
import { widthDefines, type Width } from '../wgsl';

const variants = (entry: string) =>
  kernelVariants<Width>({ name: (w) => `${entry}${w === 4 ? '4' : ''}`, source: code, entry, defines: widthDefines });
const fwd = variants('encoder_forward');
const bwdWte = variants('encoder_backward_wte');
const bwdWpe = variants('encoder_backward_wpe');

function checkDims(op: string, d: Record<string, number>): void {
  for (const [name, v] of Object.entries(d)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: ${name} = ${v} must be a positive integer`);
  }
}

/** C % 4 == 0 reads rows as vec4s. */
function width(C: number): Width {
  return C % 4 === 0 ? 4 : 1;
}

/** `v0` and `r` (forward: rows after the range; dwte: the range's first distinct token) are 0 for a whole table. */
function params(items: number, T: number, Cw: number, V: number, B: number, BT: number, v0 = 0, r = 0): ArrayBuffer {
  return packParams([
    ['u32', items],
    ['u32', T],
    ['u32', Cw],
    ['u32', V],
    ['u32', B],
    ['u32', BT],
    ['u32', v0],
    ['u32', r],
  ]);
}

interface RowRange {
  v0: number;
  rows: number;
}

/** Vocabulary row ranges whose [rows, C] f32 views each fit one binding and start at an aligned element offset. */
function vocabRanges(rt: Runtime, V: number, C: number): RowRange[] {
  return bindingRanges(rt, V * C, C).map((r) => ({ v0: r.start / C, rows: r.count / C }));
}

const rowsView = (rt: Runtime, t: Tensor, r: RowRange, C: number) => rt.view(t, r.v0 * C, [r.rows, C], `${t.label}[${r.v0}..${r.v0 + r.rows})`);

/**
 * out[B,T,C] = wte[tokens[b,t], :] + wpe[t, :]. tokens: u32 [B*T]; wte [V,C]; wpe [maxT,C] (maxT >= T).
 * V is taken from wte (wte.shape[0] for a 2D tensor, else floor(wte.size / C)). Token ids >= V are clamped to V-1
 * (never an out-of-bounds read; the host validates ids first). A wte over one binding runs one launch per vocabulary
 * row range, each writing the positions whose token lies in its rows.
 */
export function encoderForward(
  rt: Runtime,
  a: { out: Tensor; tokens: Tensor; wte: Tensor; wpe: Tensor },
  d: { B: number; T: number; C: number },
): void {
  const op = 'encoder_forward';
  const { B, T, C } = d;
  checkDims(op, { B, T, C });
  const BT = B * T;
  if (a.tokens.dtype === 'f32') throw new Error(`${op}: tokens ${a.tokens.label} must be u32, got f32`);
  const V = a.wte.shape.length === 2 ? a.wte.shape[0] : Math.floor(a.wte.size / C);
  if (V < 1) throw new Error(`${op}: wte ${a.wte.label} holds ${a.wte.size} elements, needs at least one row of C=${C}`);
  expectSize(op, 'tokens', a.tokens, BT);
  expectSize(op, 'wte', a.wte, V * C);
  expectSize(op, 'wpe', a.wpe, T * C);
  expectSize(op, 'out', a.out, BT * C);
  const w = width(C);
  const Cw = C / w;
  const items = BT * Cw;
  const ranges = vocabRanges(rt, V, C);
  if (ranges.length === 1) {
    rt.launch(fwd(w), { tokens: a.tokens, wte: a.wte, wpe: a.wpe, out: a.out }, rt.grid1d(items, 256), params(items, T, Cw, V, B, BT));
    return;
  }
  // Each launch writes the positions whose (clamped) token lies in its rows; ids >= V clamp into the last range.
  for (const r of ranges) {
    const wte = rowsView(rt, a.wte, r, C);
    rt.launch(
      fwd(w),
      { tokens: a.tokens, wte, wpe: a.wpe, out: a.out },
      rt.grid1d(items, 256),
      params(items, T, Cw, V, B, BT, r.v0, V - r.v0 - r.rows),
    );
  }
}

/**
 * Deterministic, atomics-free scatter index built on the host from the token ids, uploaded once per microbatch into
 * a reusable buffer. Layout (u32, 3*BT+1): [distinct tokens, increasing: K used of BT][offsets: K+1 used of BT+1]
 * [positions grouped by token, increasing within each token: BT].
 */
export class TokenIndex {
  readonly BT: number;
  readonly V: number;
  /** The uploaded index (u32 [3*BT+1]). */
  readonly tensor: Tensor;
  /** Number of distinct tokens in the last update() (0 before the first). */
  distinct = 0;
  private readonly rt: Runtime;
  private readonly host: Uint32Array;
  private readonly counts: Uint32Array;

  /** Reuse one instance per shape; update() rebuilds the index for new tokens and uploads it. */
  constructor(rt: Runtime, BT: number, V: number) {
    checkDims('TokenIndex', { BT, V });
    this.rt = rt;
    this.BT = BT;
    this.V = V;
    this.host = new Uint32Array(3 * BT + 1);
    this.counts = new Uint32Array(V);
    this.tensor = rt.tensor([3 * BT + 1], `token index ${BT}x${V}`, 'u32');
  }

  /** Host CSR (counting sort, O(BT + V)): for each distinct token, its positions in increasing order. Throws on ids >= V. */
  update(tokens: Uint32Array): void {
    const { BT, V, host, counts } = this;
    if (tokens.length !== BT) throw new Error(`TokenIndex.update: ${tokens.length} tokens, expected B*T = ${BT}`);
    counts.fill(0);
    for (let p = 0; p < BT; p++) {
      const v = tokens[p];
      if (v >= V) throw new Error(`TokenIndex.update: token ${v} at position ${p} is outside the vocabulary (V = ${V})`);
      counts[v]++;
    }
    // uniq + offsets; counts[v] becomes the write cursor of token v.
    const offBase = BT;
    const posBase = 2 * BT + 1;
    let K = 0;
    let cursor = 0;
    for (let v = 0; v < V; v++) {
      const c = counts[v];
      if (c === 0) continue;
      host[K] = v;
      host[offBase + K] = cursor;
      counts[v] = cursor;
      cursor += c;
      K++;
    }
    host[offBase + K] = cursor;
    for (let p = 0; p < BT; p++) host[posBase + counts[tokens[p]]++] = p;
    this.distinct = K;
    this.rt.write(this.tensor, host);
  }

  /** The distinct tokens of the last update() in [v0, v1): uniq[k0 .. k0 + count) (uniq is increasing). */
  distinctIn(v0: number, v1: number): { k0: number; count: number } {
    const k0 = this.lowerBound(v0);
    return { k0, count: this.lowerBound(v1) - k0 };
  }

  /** The first k in [0, distinct) with uniq[k] >= v, or distinct. */
  private lowerBound(v: number): number {
    let lo = 0;
    let hi = this.distinct;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.host[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * dwte[V,C] += sum over positions p with tokens[p]==v of dout[p,:];  dwpe[t,:] += sum over b of dout[b,t,:]. ACCUMULATE.
 * Fixed-order sums (no atomics) => bitwise deterministic. Work is O(B*T*C), independent of V.
 * `index` must have been update()d with this microbatch's tokens. A dwte over one binding runs one launch per
 * vocabulary row range that holds distinct tokens (their contiguous run of the index's sorted uniq list).
 */
export function encoderBackward(
  rt: Runtime,
  a: { dwte: Tensor; dwpe: Tensor; dout: Tensor; index: TokenIndex },
  d: { B: number; T: number; C: number; V: number },
): void {
  const op = 'encoder_backward';
  const { B, T, C, V } = d;
  checkDims(op, { B, T, C, V });
  const BT = B * T;
  const idx = a.index;
  if (idx.BT !== BT) throw new Error(`${op}: index was built for B*T = ${idx.BT}, got B*T = ${BT}`);
  if (idx.V > V) throw new Error(`${op}: index was built for V = ${idx.V}, larger than V = ${V}`);
  expectSize(op, 'dout', a.dout, BT * C);
  expectSize(op, 'dwte', a.dwte, V * C);
  expectSize(op, 'dwpe', a.dwpe, T * C);
  const w = width(C);
  const Cw = C / w;
  const ranges = vocabRanges(rt, V, C);
  if (ranges.length === 1) {
    const nWte = idx.distinct * Cw;
    if (nWte > 0) rt.launch(bwdWte(w), { idx: idx.tensor, dout: a.dout, dwte: a.dwte }, rt.grid1d(nWte, 256), params(nWte, T, Cw, V, B, BT));
  } else {
    // One launch per range holding distinct tokens, over its contiguous run of uniq; a range without any is skipped.
    for (const r of ranges) {
      const { k0, count } = idx.distinctIn(r.v0, r.v0 + r.rows);
      if (count === 0) continue;
      const n = count * Cw;
      const dwte = rowsView(rt, a.dwte, r, C);
      rt.launch(bwdWte(w), { idx: idx.tensor, dout: a.dout, dwte }, rt.grid1d(n, 256), params(n, T, Cw, V, B, BT, r.v0, k0));
    }
  }
  const nWpe = T * Cw;
  rt.launch(bwdWpe(w), { pdout: a.dout, dwpe: a.dwpe }, rt.grid1d(nWpe, 256), params(nWpe, T, Cw, V, B, BT));
}
