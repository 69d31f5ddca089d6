// A WebRTC link whose ICE never connected: no candidate pair got through the NATs between two peers. That is a
// deployment problem (no TURN relay, or one that is unreachable), not a flaky handshake, so it is not retried: the
// error names both peers, the candidates each side offered and what to configure, and travels to the coordinator
// (status detail) and the peers' output as text (docs/deployment.md "NAT traversal"). Browser-safe.

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';
export type CandidateCounts = Record<CandidateType, number>;

/** Every NAT traversal failure's message starts with this (the coordinator and the CLIs recognise it in text). */
export const NAT_FAILURE_MARK = 'NAT traversal failed between';

export const TURN_ADVICE =
  'Configure a TURN server: `tabswarm serve --turn turn:HOST:3478 --turn-secret SECRET` (tabs and `tabswarm peer --serve URL` get it), ' +
  'or `--turn turn:HOST:3478 --turn-user U --turn-pass P` on every Node peer and the coordinator (docs/deployment.md "NAT traversal")';

const RELAY_ADVICE =
  'a TURN relay candidate was offered but no pair through it connected: check that the TURN server is reachable from both peers ' +
  '(UDP 3478 and its relay ports) and that both use it';

export function noCandidates(): CandidateCounts {
  return { host: 0, srflx: 0, prflx: 0, relay: 0 };
}

/** The `typ` of an ICE candidate line ("candidate:1 1 UDP 2122317823 10.0.0.2 50000 typ host"), null if none. */
export function candidateType(candidate: string): CandidateType | null {
  const m = /\btyp (host|srflx|prflx|relay)\b/.exec(candidate);
  return m ? (m[1] as CandidateType) : null;
}

export function countsText(c: CandidateCounts): string {
  return `${c.host} host/${c.srflx} srflx/${c.relay} relay${c.prflx ? `/${c.prflx} prflx` : ''}`;
}

export class NatTraversalError extends Error {
  override name = 'NatTraversalError';
  constructor(
    readonly self: string,
    readonly peer: string,
    readonly local: CandidateCounts,
    readonly remote: CandidateCounts,
    /** What was seen: "ICE failed", "ICE still checking after 10000 ms". */
    readonly detail: string,
  ) {
    const relayOffered = local.relay > 0 || remote.relay > 0;
    super(
      `${NAT_FAILURE_MARK} ${self} and ${peer} (${detail}; candidates tried: ${self} ${countsText(local)}, ${peer} ${countsText(remote)}): ` +
        `no candidate pair connected. ${relayOffered ? `${RELAY_ADVICE}. ${TURN_ADVICE}` : TURN_ADVICE}`,
    );
  }
}

/** True when `text` (an error message, a status detail, a shutdown reason) reports a NAT traversal failure. */
export function isNatFailure(text: string): boolean {
  return text.includes(NAT_FAILURE_MARK);
}

/** The two peers a NAT traversal failure message names, null if `text` is not one. */
export function natPeersOf(text: string): [string, string] | null {
  const m = /NAT traversal failed between (\S+) and (\S+) \(/.exec(text);
  return m ? [m[1], m[2]] : null;
}
