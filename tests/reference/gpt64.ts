// Float64 CPU reference for GPT-2 forward and backward: plain loops, written for readability, used to check the GPU
// engine. Parameters use the Hugging Face GPT2LMHeadModel names and layouts from gpt2ParamSpecs:
//   Conv1D weights [in, out] (out = inp @ W + b); c_attn output is q | k | v; head h uses columns h*hs..(h+1)*hs;
//   pre-LayerNorm blocks (eps 1e-5, biased variance); causal attention scaled by 1/sqrt(hs); tanh-GELU; 4x MLP;
//   final LayerNorm; logits = lnf @ wte^T (tied lm_head); loss = mean cross-entropy over all B*T positions.
// Optionally a learned bottleneck (src/model/bottleneck-config.ts) before every block l in `after`: x -> z = x @ Wd
//   + bd [N, k] -> x' = z @ Wu + bu [N, C]; with passthrough z += x[:, :k] and x'[:, :k] += z.
// Activation layouts (llm.c): [B, T, C]-style rows flattened to [N = B*T, ...]; attention maps [B, NH, T, T] with
// zeros above the diagonal.
import { bottleneckNames, modelParamSpecs, validateBottleneck, type BottleneckConfig } from '../../src/model/bottleneck-config';
import { gpt2ParamSpecs, initStd, validateConfig, type GPTConfig } from '../../src/model/config';
import { randn, rng } from '../support/random';

export type Params64 = Map<string, Float64Array>;

const LN_EPS = 1e-5;
const GELU_S = Math.sqrt(2 / Math.PI);

// ------------------------------------------------------------------------------------------- building blocks

/** out[N, OUT] = inp[N, IN] @ w[IN, OUT] + b[OUT] */
function matmul(inp: Float64Array, w: Float64Array, b: Float64Array | null, N: number, IN: number, OUT: number): Float64Array {
  const out = new Float64Array(N * OUT);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OUT; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < IN; i++) s += inp[n * IN + i] * w[i * OUT + o];
      out[n * OUT + o] = s;
    }
  }
  return out;
}

/** Returns dinp; accumulates dw (+= inp^T @ dout) and db (+= column sums of dout). */
function matmulBackward(
  dout: Float64Array,
  inp: Float64Array,
  w: Float64Array,
  dw: Float64Array,
  db: Float64Array | null,
  N: number,
  IN: number,
  OUT: number,
): Float64Array {
  const dinp = new Float64Array(N * IN);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OUT; o++) {
      const d = dout[n * OUT + o];
      if (db) db[o] += d;
      for (let i = 0; i < IN; i++) {
        dinp[n * IN + i] += d * w[i * OUT + o];
        dw[i * OUT + o] += d * inp[n * IN + i];
      }
    }
  }
  return dinp;
}

export interface LnOut {
  out: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

export function layernorm(x: Float64Array, w: Float64Array, b: Float64Array, N: number, C: number): LnOut {
  const out = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x[n * C + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[n * C + c] - m) ** 2;
    v /= C; // biased variance
    const r = 1 / Math.sqrt(v + LN_EPS);
    for (let c = 0; c < C; c++) out[n * C + c] = (x[n * C + c] - m) * r * w[c] + b[c];
    mean[n] = m;
    rstd[n] = r;
  }
  return { out, mean, rstd };
}

/** Returns dx; accumulates dw, db. */
export function layernormBackward(
  dout: Float64Array,
  x: Float64Array,
  ln: LnOut,
  w: Float64Array,
  dw: Float64Array,
  db: Float64Array,
  N: number,
  C: number,
): Float64Array {
  const dx = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const m = ln.mean[n];
    const r = ln.rstd[n];
    let dnormMean = 0;
    let dnormXhatMean = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (x[n * C + c] - m) * r;
      const dnorm = dout[n * C + c] * w[c];
      dnormMean += dnorm;
      dnormXhatMean += dnorm * xhat;
    }
    dnormMean /= C;
    dnormXhatMean /= C;
    for (let c = 0; c < C; c++) {
      const xhat = (x[n * C + c] - m) * r;
      const d = dout[n * C + c];
      dw[c] += d * xhat;
      db[c] += d;
      dx[n * C + c] = r * (d * w[c] - dnormMean - xhat * dnormXhatMean);
    }
  }
  return dx;
}

function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(GELU_S * (x + 0.044715 * x ** 3)));
}

function geluGrad(x: number): number {
  const th = Math.tanh(GELU_S * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GELU_S * (1 + 3 * 0.044715 * x * x);
}

interface AttnOut {
  y: Float64Array; // [N, C]
  preatt: Float64Array; // [B, NH, T, T] scaled scores, 0 above the diagonal
  att: Float64Array; // [B, NH, T, T] softmax probabilities, 0 above the diagonal
}

function attention(qkv: Float64Array, B: number, T: number, C: number, NH: number): AttnOut {
  const hs = C / NH;
  const scale = 1 / Math.sqrt(hs);
  const y = new Float64Array(B * T * C);
  const preatt = new Float64Array(B * NH * T * T);
  const att = new Float64Array(B * NH * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const q = (b * T + t) * 3 * C + h * hs;
        const row = ((b * NH + h) * T + t) * T;
        let max = -Infinity;
        for (let t2 = 0; t2 <= t; t2++) {
          const k = (b * T + t2) * 3 * C + C + h * hs;
          let s = 0;
          for (let i = 0; i < hs; i++) s += qkv[q + i] * qkv[k + i];
          preatt[row + t2] = s * scale;
          max = Math.max(max, s * scale);
        }
        let sum = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          att[row + t2] = Math.exp(preatt[row + t2] - max);
          sum += att[row + t2];
        }
        for (let t2 = 0; t2 <= t; t2++) att[row + t2] /= sum;
        for (let t2 = 0; t2 <= t; t2++) {
          const v = (b * T + t2) * 3 * C + 2 * C + h * hs;
          for (let i = 0; i < hs; i++) y[(b * T + t) * C + h * hs + i] += att[row + t2] * qkv[v + i];
        }
      }
    }
  }
  return { y, preatt, att };
}

/** Returns dqkv [N, 3C]. */
function attentionBackward(dy: Float64Array, qkv: Float64Array, att: Float64Array, B: number, T: number, C: number, NH: number): Float64Array {
  const hs = C / NH;
  const scale = 1 / Math.sqrt(hs);
  const dqkv = new Float64Array(B * T * 3 * C);
  const datt = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const row = ((b * NH + h) * T + t) * T;
        const yo = (b * T + t) * C + h * hs;
        // y = sum_t2 att[t2] v[t2]
        for (let t2 = 0; t2 <= t; t2++) {
          const v = (b * T + t2) * 3 * C + 2 * C + h * hs;
          let s = 0;
          for (let i = 0; i < hs; i++) {
            s += dy[yo + i] * qkv[v + i];
            dqkv[v + i] += att[row + t2] * dy[yo + i];
          }
          datt[t2] = s;
        }
        // softmax: dpre[t2] = att[t2] * (datt[t2] - sum_j att[j] datt[j])
        let dot = 0;
        for (let t2 = 0; t2 <= t; t2++) dot += att[row + t2] * datt[t2];
        const q = (b * T + t) * 3 * C + h * hs;
        for (let t2 = 0; t2 <= t; t2++) {
          const dpre = att[row + t2] * (datt[t2] - dot) * scale;
          const k = (b * T + t2) * 3 * C + C + h * hs;
          for (let i = 0; i < hs; i++) {
            dqkv[q + i] += dpre * qkv[k + i];
            dqkv[k + i] += dpre * qkv[q + i];
          }
        }
      }
    }
  }
  return dqkv;
}

// ------------------------------------------------------------------------------------------- model

function getParam(params: Params64, name: string, size: number): Float64Array {
  const p = params.get(name);
  if (!p) throw new Error(`gpt64: parameter "${name}" is missing`);
  if (p.length !== size) throw new Error(`gpt64: parameter "${name}" has ${p.length} values, expected ${size}`);
  return p;
}

function checkInputs(
  config: GPTConfig,
  params: Params64,
  inputs: Uint32Array,
  targets: Uint32Array,
  B: number,
  T: number,
  bn: BottleneckConfig | null,
): void {
  validateConfig(config);
  if (bn) validateBottleneck(config, bn);
  if (!(Number.isInteger(B) && B >= 1 && Number.isInteger(T) && T >= 1)) throw new Error(`gpt64: bad B=${B}, T=${T}`);
  if (T > config.block_size) throw new Error(`gpt64: T=${T} exceeds block_size ${config.block_size}`);
  if (inputs.length !== B * T || targets.length !== B * T) throw new Error(`gpt64: inputs/targets must have B*T = ${B * T} entries`);
  for (let i = 0; i < B * T; i++) {
    if (inputs[i] >= config.vocab_size || targets[i] >= config.vocab_size) throw new Error(`gpt64: token id out of range at ${i}`);
  }
  for (const s of modelParamSpecs(config, bn))
    getParam(
      params,
      s.name,
      s.shape.reduce((a, b) => a * b, 1),
    );
}

interface LayerCache {
  x: Float64Array; // block input (residual stream)
  ln1: LnOut;
  qkv: Float64Array;
  attn: AttnOut;
  attproj: Float64Array;
  res2: Float64Array;
  ln2: LnOut;
  fch: Float64Array;
  fchGelu: Float64Array;
  fcproj: Float64Array;
  out: Float64Array;
}

/** One bottleneck crossing before a block: its input x [N, C], the narrow z [N, k] and the output x' [N, C]. */
interface BottleneckCache {
  l: number;
  x: Float64Array;
  z: Float64Array;
  out: Float64Array;
}

/** dst[n, c] += src[n, c] for c < k over N rows of widths dstW, srcW (the passthrough). */
function addColumns(dst: Float64Array, dstW: number, src: Float64Array, srcW: number, N: number, k: number): void {
  for (let n = 0; n < N; n++) for (let c = 0; c < k; c++) dst[n * dstW + c] += src[n * srcW + c];
}

function bottleneckForward(params: Params64, bn: BottleneckConfig, l: number, x: Float64Array, N: number, C: number): BottleneckCache {
  const k = bn.width;
  const n = bottleneckNames(l);
  const p = (name: string) => params.get(name)!;
  const z = matmul(x, p(n.downW), p(n.downB), N, C, k);
  if (bn.passthrough) addColumns(z, k, x, C, N, k);
  const out = matmul(z, p(n.upW), p(n.upB), N, k, C);
  if (bn.passthrough) addColumns(out, C, z, k, N, k);
  return { l, x, z, out };
}

/** From dout (gradient of x'): accumulates the projections' gradients, returns the gradient of x. */
function bottleneckBackward(
  params: Params64,
  grads: Map<string, Float64Array>,
  bn: BottleneckConfig,
  c: BottleneckCache,
  dout: Float64Array,
  N: number,
  C: number,
): Float64Array {
  const k = bn.width;
  const n = bottleneckNames(c.l);
  const p = (name: string) => params.get(name)!;
  const g = (name: string) => grads.get(name)!;
  const dz = matmulBackward(dout, c.z, p(n.upW), g(n.upW), g(n.upB), N, k, C);
  if (bn.passthrough) addColumns(dz, k, dout, C, N, k);
  const dx = matmulBackward(dz, c.x, p(n.downW), g(n.downW), g(n.downB), N, C, k);
  if (bn.passthrough) addColumns(dx, C, dz, k, N, k);
  return dx;
}

interface ForwardCache {
  encoded: Float64Array;
  layers: LayerCache[];
  bottlenecks: BottleneckCache[];
  lnf: LnOut;
  xL: Float64Array;
  logits: Float64Array;
  probs: Float64Array;
  loss: number;
}

function forward(
  config: GPTConfig,
  params: Params64,
  inputs: Uint32Array,
  targets: Uint32Array,
  B: number,
  T: number,
  bn: BottleneckConfig | null,
): ForwardCache {
  checkInputs(config, params, inputs, targets, B, T, bn);
  const { n_layer: L, n_head: NH, n_embd: C, vocab_size: V } = config;
  const N = B * T;
  const p = (name: string) => params.get(name)!;
  const wte = p('transformer.wte.weight');
  const wpe = p('transformer.wpe.weight');

  const encoded = new Float64Array(N * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      for (let c = 0; c < C; c++) encoded[n * C + c] = wte[inputs[n] * C + c] + wpe[t * C + c];
    }
  }

  let x: Float64Array = encoded;
  const layers: LayerCache[] = [];
  const bottlenecks: BottleneckCache[] = [];
  for (let l = 0; l < L; l++) {
    if (bn?.after.includes(l)) {
      const b = bottleneckForward(params, bn, l, x, N, C);
      bottlenecks.push(b);
      x = b.out;
    }
    const pre = `transformer.h.${l}.`;
    const ln1 = layernorm(x, p(pre + 'ln_1.weight'), p(pre + 'ln_1.bias'), N, C);
    const qkv = matmul(ln1.out, p(pre + 'attn.c_attn.weight'), p(pre + 'attn.c_attn.bias'), N, C, 3 * C);
    const attn = attention(qkv, B, T, C, NH);
    const attproj = matmul(attn.y, p(pre + 'attn.c_proj.weight'), p(pre + 'attn.c_proj.bias'), N, C, C);
    const res2 = x.map((v, i) => v + attproj[i]);
    const ln2 = layernorm(res2, p(pre + 'ln_2.weight'), p(pre + 'ln_2.bias'), N, C);
    const fch = matmul(ln2.out, p(pre + 'mlp.c_fc.weight'), p(pre + 'mlp.c_fc.bias'), N, C, 4 * C);
    const fchGelu = fch.map(gelu);
    const fcproj = matmul(fchGelu, p(pre + 'mlp.c_proj.weight'), p(pre + 'mlp.c_proj.bias'), N, 4 * C, C);
    const out = res2.map((v, i) => v + fcproj[i]);
    layers.push({ x, ln1, qkv, attn, attproj, res2, ln2, fch, fchGelu, fcproj, out });
    x = out;
  }

  const lnf = layernorm(x, p('transformer.ln_f.weight'), p('transformer.ln_f.bias'), N, C);
  const logits = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += lnf.out[n * C + c] * wte[v * C + c];
      logits[n * V + v] = s;
    }
  }
  const probs = new Float64Array(N * V);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[n * V + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += probs[n * V + v] = Math.exp(logits[n * V + v] - max);
    for (let v = 0; v < V; v++) probs[n * V + v] /= sum;
    // -log softmax computed from the logits (more accurate than -log(probs) when a probability is tiny)
    loss += -(logits[n * V + targets[n]] - max - Math.log(sum));
  }
  loss /= N;
  return { encoded, layers, bottlenecks, lnf, xL: x, logits, probs, loss };
}

/**
 * Forward pass (with `bottleneck`, through its projections). `acts` names (per layer l): 'encoded'; per boundary l
 * 'bn.l.z' (the narrow tensor) and 'bn.l.out' (the up-projection); 'h.l.ln1', 'h.l.ln1_mean', 'h.l.ln1_rstd', 'h.l.qkv',
 * 'h.l.preatt', 'h.l.att', 'h.l.atty', 'h.l.attproj', 'h.l.res2', 'h.l.ln2', 'h.l.ln2_mean', 'h.l.ln2_rstd',
 * 'h.l.fch', 'h.l.fch_gelu', 'h.l.fcproj', 'h.l.out'; then 'lnf', 'lnf_mean', 'lnf_rstd', 'logits', 'probs',
 * 'losses' (per-position cross-entropy [N]).
 */
export function gpt64Forward(
  config: GPTConfig,
  params: Params64,
  inputs: Uint32Array,
  targets: Uint32Array,
  B: number,
  T: number,
  bottleneck: BottleneckConfig | null = null,
): { loss: number; acts: Record<string, Float64Array> } {
  const f = forward(config, params, inputs, targets, B, T, bottleneck);
  const acts: Record<string, Float64Array> = { encoded: f.encoded };
  for (const b of f.bottlenecks) Object.assign(acts, { [`bn.${b.l}.z`]: b.z, [`bn.${b.l}.out`]: b.out });
  f.layers.forEach((c, l) => {
    const h = `h.${l}.`;
    Object.assign(acts, {
      [h + 'ln1']: c.ln1.out,
      [h + 'ln1_mean']: c.ln1.mean,
      [h + 'ln1_rstd']: c.ln1.rstd,
      [h + 'qkv']: c.qkv,
      [h + 'preatt']: c.attn.preatt,
      [h + 'att']: c.attn.att,
      [h + 'atty']: c.attn.y,
      [h + 'attproj']: c.attproj,
      [h + 'res2']: c.res2,
      [h + 'ln2']: c.ln2.out,
      [h + 'ln2_mean']: c.ln2.mean,
      [h + 'ln2_rstd']: c.ln2.rstd,
      [h + 'fch']: c.fch,
      [h + 'fch_gelu']: c.fchGelu,
      [h + 'fcproj']: c.fcproj,
      [h + 'out']: c.out,
    });
  });
  const N = B * T;
  const V = config.vocab_size;
  const losses = new Float64Array(N);
  for (let n = 0; n < N; n++) losses[n] = -Math.log(f.probs[n * V + targets[n]]);
  Object.assign(acts, { lnf: f.lnf.out, lnf_mean: f.lnf.mean, lnf_rstd: f.lnf.rstd, logits: f.logits, probs: f.probs, losses });
  return { loss: f.loss, acts };
}

/** Loss and the gradient of the mean loss w.r.t. every parameter (same names and shapes as params; bottleneck's too). */
export function gpt64Backward(
  config: GPTConfig,
  params: Params64,
  inputs: Uint32Array,
  targets: Uint32Array,
  B: number,
  T: number,
  bottleneck: BottleneckConfig | null = null,
): { loss: number; grads: Map<string, Float64Array> } {
  const f = forward(config, params, inputs, targets, B, T, bottleneck);
  const { n_layer: L, n_head: NH, n_embd: C, vocab_size: V } = config;
  const N = B * T;
  const p = (name: string) => params.get(name)!;
  const grads = new Map<string, Float64Array>();
  for (const s of modelParamSpecs(config, bottleneck)) grads.set(s.name, new Float64Array(s.shape.reduce((a, b) => a * b, 1)));
  const g = (name: string) => grads.get(name)!;
  const wte = p('transformer.wte.weight');
  const dwte = g('transformer.wte.weight');

  // cross-entropy + softmax: dlogits = (probs - onehot) / N
  const dlogits = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) dlogits[n * V + v] = (f.probs[n * V + v] - (v === targets[n] ? 1 : 0)) / N;
  }
  // logits = lnf @ wte^T
  const dlnf = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      const d = dlogits[n * V + v];
      for (let c = 0; c < C; c++) {
        dlnf[n * C + c] += d * wte[v * C + c];
        dwte[v * C + c] += d * f.lnf.out[n * C + c];
      }
    }
  }
  let dx = layernormBackward(dlnf, f.xL, f.lnf, p('transformer.ln_f.weight'), g('transformer.ln_f.weight'), g('transformer.ln_f.bias'), N, C);

  for (let l = L - 1; l >= 0; l--) {
    const pre = `transformer.h.${l}.`;
    const c = f.layers[l];
    // out = res2 + fcproj
    const dfcproj = dx;
    const dfchGelu = matmulBackward(
      dfcproj,
      c.fchGelu,
      p(pre + 'mlp.c_proj.weight'),
      g(pre + 'mlp.c_proj.weight'),
      g(pre + 'mlp.c_proj.bias'),
      N,
      4 * C,
      C,
    );
    const dfch = dfchGelu.map((d, i) => d * geluGrad(c.fch[i]));
    const dln2 = matmulBackward(dfch, c.ln2.out, p(pre + 'mlp.c_fc.weight'), g(pre + 'mlp.c_fc.weight'), g(pre + 'mlp.c_fc.bias'), N, C, 4 * C);
    const dres2ln = layernormBackward(dln2, c.res2, c.ln2, p(pre + 'ln_2.weight'), g(pre + 'ln_2.weight'), g(pre + 'ln_2.bias'), N, C);
    const dres2 = dx.map((d, i) => d + dres2ln[i]);
    // res2 = x + attproj
    const datty = matmulBackward(dres2, c.attn.y, p(pre + 'attn.c_proj.weight'), g(pre + 'attn.c_proj.weight'), g(pre + 'attn.c_proj.bias'), N, C, C);
    const dqkv = attentionBackward(datty, c.qkv, c.attn.att, B, T, C, NH);
    const dln1 = matmulBackward(
      dqkv,
      c.ln1.out,
      p(pre + 'attn.c_attn.weight'),
      g(pre + 'attn.c_attn.weight'),
      g(pre + 'attn.c_attn.bias'),
      N,
      C,
      3 * C,
    );
    const dxln = layernormBackward(dln1, c.x, c.ln1, p(pre + 'ln_1.weight'), g(pre + 'ln_1.weight'), g(pre + 'ln_1.bias'), N, C);
    dx = dres2.map((d, i) => d + dxln[i]);
    const b = f.bottlenecks.find((x) => x.l === l);
    if (b && bottleneck) dx = bottleneckBackward(params, grads, bottleneck, b, dx, N, C);
  }

  // encoded = wte[token] + wpe[t]
  const dwpe = g('transformer.wpe.weight');
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      for (let c = 0; c < C; c++) {
        dwte[inputs[n] * C + c] += dx[n * C + c];
        dwpe[t * C + c] += dx[n * C + c];
      }
    }
  }
  return { loss: f.loss, grads };
}

/**
 * GPT-2 initialisation per initStd (normal std 0.02, residual projections 0.02/sqrt(2*n_layer), LN gains 1,
 * biases 0), drawn in gpt2ParamSpecs order from mulberry32(seed) + Box-Muller (float32-rounded, like randn).
 */
export function initParams64(config: GPTConfig, seed: number): Params64 {
  validateConfig(config);
  const rand = rng(seed);
  const params: Params64 = new Map();
  for (const s of gpt2ParamSpecs(config)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const std = initStd(s.name, config);
    const data = new Float64Array(n);
    if (std === 'ones') data.fill(1);
    else if (std !== 'zeros') data.set(randn(n, rand, std));
    params.set(s.name, data);
  }
  return params;
}
