// How both pages write ledger figures: credits are FLOPs of verified work (docs/trust.md "Ledger").
import type { CreditView } from '../coordinator/run-view';

/** 1234567 -> "1.23 MFLOP". */
export function flopsLabel(n: number): string {
  const units = ['', 'k', 'M', 'G', 'T', 'P', 'E'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}FLOP`;
}

/** 0.2534 -> "25.3%". */
export function shareLabel(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

/** A contributor's line: its credits, share of all, validations and strikes. */
export function creditLine(c: CreditView | null): string {
  if (!c) return '—';
  return (
    `${flopsLabel(c.credits)} (${shareLabel(c.share)} of ${flopsLabel(c.total)}, ${c.contributors} contributor${c.contributors === 1 ? '' : 's'})` +
    ` · validated ${c.validated} · strikes ${c.strikes}`
  );
}
