// JSON from an untrusted sender, bounded before anything recursive touches it. JSON.parse itself is iterative in
// V8, but every walk over its result (zod, JSON.stringify, structured clone, a handler's own recursion) is not: a
// 10 KB message nested a few thousand levels deep overflows the stack. So the raw text is scanned first, in one
// iterative pass, for its length and its nesting depth; only text within both limits is parsed at all.

export interface JsonLimits {
  /** Longest text, in UTF-16 code units (callers also cap the raw bytes before decoding). */
  maxChars: number;
  /** Deepest nesting of arrays and objects; `1` allows `{"a":1}` but not `{"a":[]}`. */
  maxDepth: number;
}

export type BoundedJson = { ok: true; value: unknown } | { ok: false; reason: 'too-large' | 'too-deep' | 'not-json'; detail: string };

/** Nesting depth of `text`'s arrays/objects, ignoring brackets inside strings; stops early past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return max;
}

/** Parses `text` if it is within `limits`; never throws. */
export function parseBoundedJson(text: string, limits: JsonLimits): BoundedJson {
  if (text.length > limits.maxChars) return { ok: false, reason: 'too-large', detail: `${text.length} characters > ${limits.maxChars}` };
  const depth = jsonDepth(text, limits.maxDepth);
  if (depth > limits.maxDepth) return { ok: false, reason: 'too-deep', detail: `nested deeper than ${limits.maxDepth} levels` };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, reason: 'not-json', detail: 'not JSON' };
  }
}
