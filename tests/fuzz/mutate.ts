// Seeded mutations of valid binary inputs for the fuzz suites: each input is either random bytes or a valid
// encoding with one to four edits (bit flips, bytes set to boundary values, u32 / f32 fields overwritten with
// interesting values, truncation, extension, a spliced random run), so most inputs get past the first checks.
const U32_EDGE = [0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x400, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const F32_EDGE = [Number.NaN, Infinity, -Infinity, -0, 1e-40, 3.4e38, -1, 1e30];

function int(rand: () => number, hi: number): number {
  return Math.floor(rand() * hi);
}

export function randomBytes(rand: () => number, maxLen: number): Uint8Array {
  const out = new Uint8Array(int(rand, maxLen + 1));
  for (let i = 0; i < out.length; i++) out[i] = int(rand, 256);
  return out;
}

/** One to four edits of `valid` (never `valid` itself; a copy). `hot`: byte ranges the edits prefer (headers). */
export function mutate(valid: Uint8Array, rand: () => number, hot: [number, number][] = []): Uint8Array {
  let b: Uint8Array = valid.slice();
  const edits = 1 + int(rand, 4);
  const pos = (len: number): number => {
    if (hot.length > 0 && rand() < 0.6) {
      const [lo, hi] = hot[int(rand, hot.length)];
      return Math.min(len - 1, lo + int(rand, Math.max(1, hi - lo)));
    }
    return int(rand, len);
  };
  for (let e = 0; e < edits; e++) {
    const kind = int(rand, 8);
    if (b.length === 0) {
      b = randomBytes(rand, 64);
      continue;
    }
    const i = pos(b.length);
    switch (kind) {
      case 0:
        b[i] ^= 1 << int(rand, 8);
        break;
      case 1:
        b[i] = [0, 1, 0x7f, 0x80, 0xff][int(rand, 5)];
        break;
      case 2:
        if (i + 4 <= b.length) new DataView(b.buffer).setUint32(i & ~3, U32_EDGE[int(rand, U32_EDGE.length)], true);
        break;
      case 3:
        if (i + 4 <= b.length) new DataView(b.buffer).setFloat32(i & ~3, F32_EDGE[int(rand, F32_EDGE.length)], true);
        break;
      case 4:
        b = b.slice(0, int(rand, b.length));
        break;
      case 5: {
        const extra = randomBytes(rand, 16);
        const c = new Uint8Array(b.length + extra.length);
        c.set(b);
        c.set(extra, b.length);
        b = c;
        break;
      }
      case 6: {
        const run = randomBytes(rand, 32);
        b.set(run.subarray(0, Math.max(0, b.length - i)), i);
        break;
      }
      default:
        b[i] = int(rand, 256);
    }
  }
  return b;
}

/** A thrown value that is a refusal, not a crash: an Error of the expected class, with a message. */
export function isCrash(e: unknown): boolean {
  return !(e instanceof Error) || e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e.message.length === 0;
}
