// The swarm's codec for the control plane: src/net hands it envelope-checked opaque payloads (bounded in size and
// depth), and it reads the signed envelope `{type, seq, body, sig}` (src/protocol/signed-control.ts). A payload that
// fails is reported by the caller ('control-rejected' on a SignalingClient, a protocol error on a transport) and
// dropped; it never reaches swarm code. The signature and the body are checked by SignedControl, which is what the
// swarm talks to: connectSwarm opens one.
import type { ControlCodec } from '../net/control-envelope';
import { SignalingClient, type SignalingConnectOptions } from '../net/signaling-client';
import { parseSignedEnvelope, SignedControl, type SignedControlOptions, type SignedEnvelope } from './signed-control';

export const swarmControl: ControlCodec<SignedEnvelope> = { parse: (payload) => parseSignedEnvelope(payload) };

/** A signaling connection speaking the swarm's signed control messages. */
export type SwarmSignaling = SignedControl<SignalingClient<SignedEnvelope>>;

/** Joins a room (SignalingClient.connect) and speaks signed control on it. */
export async function connectSwarm(
  url: string,
  opts: Omit<SignalingConnectOptions<SignedEnvelope>, 'control'> & Pick<SignedControlOptions, 'maxPending'>,
): Promise<SwarmSignaling> {
  // Replay after a reconnect is safe here: SignedControl drops a copy its receiver already got (per-sender seq).
  const sig = await SignalingClient.connect(url, { ...opts, control: swarmControl, reconnect: { replayControlMs: 3000, ...opts.reconnect } });
  return new SignedControl(sig, { log: opts.log, maxPending: opts.maxPending });
}
