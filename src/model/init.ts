// Deterministic GPT-2 initialisation from a seed, so every peer of a run can build identical weights locally.
import { initStd, type GPTConfig, type ParamSpec } from './config';

/** mulberry32: a small seeded uniform [0, 1) generator, identical on every JS engine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Normal samples via Box-Muller over mulberry32, good enough for initialisation. */
function normalSource(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(Math.max(uniform(), 1e-12))) * Math.cos(2 * Math.PI * uniform());
}

/** Each tensor gets its own stream (seed mixed with the tensor name) so a stage's init does not depend on the others. */
function nameSeed(seed: number, name: string): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function initParams(config: GPTConfig, specs: ParamSpec[], seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const kind = initStd(s.name, config);
    const v = new Float32Array(n);
    if (kind === 'ones') v.fill(1);
    else if (kind !== 'zeros') {
      const next = normalSource(nameSeed(seed, s.name));
      for (let i = 0; i < n; i++) v[i] = kind * next();
    }
    out.set(s.name, v);
  }
  return out;
}
