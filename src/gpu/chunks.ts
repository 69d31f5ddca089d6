// Flat buffers larger than one storage binding (a big model's parameter store: GPT-2 small's first stage is 177 MiB
// per copy, over the 128 MiB lavapipe and Chromium bind) are processed in views: contiguous element ranges of at
// most rt.maxBindingBytes, each starting where the op's own blocking and the storage offset alignment allow.
import type { Runtime } from './runtime';

export interface ElementRange {
  start: number;
  count: number;
}

/**
 * Ranges covering [0, n) in order, each at most `maxBindingBytes` of f32 and each start a multiple of `multiple`
 * elements and of the runtime's view alignment (so a view at it can be bound). One range [0, n) when n fits.
 */
export function bindingRanges(rt: Runtime, n: number, multiple = 1): ElementRange[] {
  const unit = lcm(Math.max(1, multiple), rt.viewAlignment);
  const perRange = Math.floor(rt.maxBindingBytes / 4 / unit) * unit;
  if (n * 4 <= rt.maxBindingBytes) return [{ start: 0, count: n }];
  if (perRange < unit) throw new Error(`bindingRanges: a binding of ${rt.maxBindingBytes} B holds less than one block of ${unit} elements`);
  const out: ElementRange[] = [];
  for (let start = 0; start < n; start += perRange) out.push({ start, count: Math.min(perRange, n - start) });
  return out;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}
