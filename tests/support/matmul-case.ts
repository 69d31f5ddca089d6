// One matmul test case (shape and transpose/bias/accumulate flags) and its name, shared by the f32 and f16 kernel
// tests.

/** out[M, N] (= or +=) op(a)[M, K] @ op(b)[K, N] (+ bias[N]). */
export interface MatmulTestCase {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  accumulate: boolean;
}

/** e.g. "17x3x33 tA bias acc". */
export function caseName(c: MatmulTestCase): string {
  return `${c.M}x${c.N}x${c.K}${c.transA ? ' tA' : ''}${c.transB ? ' tB' : ''}${c.bias ? ' bias' : ''}${c.accumulate ? ' acc' : ''}`;
}
