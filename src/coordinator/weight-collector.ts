// Fetches every stage's trained parameters from one replica per stage over WebRTC, as an observer peer: the
// coordinator announces a membership epoch in which the observer is appended to every stage and joins each stage
// as a new replica copying its state from the stage's first member (the swarm's ordinary state-transfer path,
// src/swarm/peer.ts). Tensors never pass the signaling server. Runs between steps: after the run's last step,
// before the final shutdown (src/coordinator/run-lifecycle.ts holds it back). Environment-neutral: the caller
// brings the observer's signaling connection and the platform's RTCPeerConnection factory.
import type { ControlOf } from '../protocol/messages';
import { PeerNetwork } from '../net/peer-network';
import type { RtcFactory } from '../net/rtc-session';
import type { SwarmSignaling } from '../protocol/control-codec';
import { dialsFirst, Links } from '../swarm/links';
import { receiveStageState } from '../swarm/state-transfer';

export interface CollectWeightsOptions {
  /** Opens the observer's own signaling connection (role 'peer', in the run's room); its id is its key's. */
  connect: () => Promise<SwarmSignaling>;
  /** The coordinator's control plane: announces the observer's membership epoch. */
  control: Pick<SwarmSignaling, 'sendControl'>;
  rtcFactory: RtcFactory;
  /** Live members per stage (the coordinator's members()); the first of each is copied. */
  members: string[][];
  /** Steps completed (the coordinator's step). */
  step: number;
  timeoutMs?: number;
  log?: (s: string) => void;
}

/** Parameters by name (gpt2ParamSpecs names), every stage's. */
export async function collectWeights(opts: CollectWeightsOptions): Promise<Map<string, Float32Array>> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const members = opts.members.map((m) => [...m]);
  if (members.some((m) => m.length === 0)) throw new Error('collectWeights: a stage has no live replica');
  const sig = await opts.connect();
  const obsId = sig.peerId;
  const net = new PeerNetwork(sig.signaling, opts.rtcFactory);
  const links = new Links(net, () => undefined);
  try {
    const stages = members.map((m) => [...m, obsId]);
    const msg: ControlOf<'swarm-members'> = {
      type: 'swarm-members',
      // An epoch of its own, far above the run's, so no peer mistakes it for a stale one.
      epoch: 1_000_000 + Math.floor(Math.random() * 1000),
      stages,
      speeds: stages.map((m) => m.map(() => 1)),
      joins: members.map((m, s) => ({ peer: obsId, stage: s, source: m[0] })),
      step: opts.step,
    };
    opts.control.sendControl(msg, '*');
    const everyone = [...new Set(members.flat())];
    await Promise.all(everyone.map((p) => links.link(p, dialsFirst(stages, obsId, p), timeoutMs)));
    const out = new Map<string, Float32Array>();
    await Promise.all(
      members.map(async (m, s) => {
        const t = links.get(m[0]);
        if (!t) throw new Error(`collectWeights: no link to ${m[0]}`);
        const t0 = performance.now();
        const got = await receiveStageState(t, { timeoutMs });
        for (const [name, offset, size] of layoutSlots(got.layout)) out.set(name, got.params.slice(offset, offset + size));
        opts.log?.(`stage ${s}: ${got.params.length} values from ${m[0]} (step ${got.step}) in ${(performance.now() - t0).toFixed(0)} ms`);
      }),
    );
    return out;
  } finally {
    links.close();
    net.close();
    sig.close();
  }
}

/** [name, offset, size] of every slot of a stage-state layout string (src/swarm/state-transfer.ts layoutOf). */
function layoutSlots(layout: string): [string, number, number][] {
  const parsed: unknown = JSON.parse(layout);
  const slots = (parsed as { slots?: unknown }).slots;
  if (!Array.isArray(slots)) throw new Error('collectWeights: a stage state layout without slots');
  return slots.map((x: unknown) => {
    if (!Array.isArray(x) || typeof x[0] !== 'string' || typeof x[1] !== 'number' || typeof x[2] !== 'number') {
      throw new Error(`collectWeights: a malformed layout slot ${JSON.stringify(x).slice(0, 80)}`);
    }
    return [x[0], x[1], x[2]];
  });
}
