// Bytes a peer puts on the wire, by what they carry: every transport frame (framing included) under its tensor's
// kind, control frames and control messages to the signaling server under WIRE_CONTROL, everything that keeps links
// alive or sets them up (heartbeats, goodbyes, WebRTC signaling, joins, pings) under WIRE_LINK. src/net knows no
// tensor kind: it counts the kind strings it is given; src/protocol (wire-categories.ts) maps them to categories.

/** Control payloads: on a transport's control frames and on the signaling connection. */
export const WIRE_CONTROL = '#control';
/** Link upkeep: heartbeats, goodbyes, WebRTC offers/answers/candidates, room joins, pings. */
export const WIRE_LINK = '#link';

/** Bytes sent per key; one meter can be shared by every transport and the signaling client of a peer. */
export class WireMeter {
  private readonly totals = new Map<string, number>();
  private readonly marks = new Map<string, number>();

  add(key: string, bytes: number): void {
    if (!(bytes > 0)) return;
    this.totals.set(key, (this.totals.get(key) ?? 0) + bytes);
  }

  /** Bytes sent per key since this meter was made. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.totals);
  }

  /** Bytes sent per key since the previous take() (keys with nothing new are left out). */
  take(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.totals) {
      const d = v - (this.marks.get(k) ?? 0);
      if (d > 0) out[k] = d;
      this.marks.set(k, v);
    }
    return out;
  }
}

const encoder = new TextEncoder();

/** UTF-8 length of a string (what a WebSocket text frame carries), without allocating for ASCII-only text. */
export function utf8Length(s: string): number {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s.length : encoder.encode(s).byteLength;
}
