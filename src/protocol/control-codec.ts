// The swarm's codec for the control plane: src/net hands it envelope-checked opaque payloads (bounded in size and
// depth), and it types them with the message union. A payload that fails is reported by the caller ('control-
// rejected' on a SignalingClient, a protocol error on a transport) and dropped; it never reaches swarm code.
import type { ControlCodec } from '../net/control-envelope';
import type { SignalingClient } from '../net/signaling-client';
import { controlMessageSchema, type ControlMessage } from './messages';

export const swarmControl: ControlCodec<ControlMessage> = {
  parse(payload) {
    const r = controlMessageSchema.safeParse(payload);
    if (r.success) return { ok: true, value: r.data };
    const issues = r.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    return { ok: false, error: `invalid ${payload.type.slice(0, 64)} message: ${issues}` };
  },
};

/** A signaling connection whose control plane speaks the swarm's messages. */
export type SwarmSignaling = SignalingClient<ControlMessage>;
