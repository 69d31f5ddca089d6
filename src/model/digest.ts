// A cheap digest of a float vector's bits, for "replicas agree bitwise" (step-done) and "every replica received the
// same vector from rank j" (robust aggregation). In the model layer so that a stage computes its parameters' digest
// where they are (ParamStore.digest: on the mapped readback, no host copy; in a Web Worker, there).

/** FNV-1a over the bytes, two lanes. */
export function digestFloats(a: Float32Array): string {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ u.length;
  for (let i = 0; i < u.length; i++) {
    const x = u[i];
    h1 = Math.imul(h1 ^ x, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ ((x >>> 16) | (x << 16)), 0x5bd1e995) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
